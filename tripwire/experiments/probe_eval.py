"""`tripwire eval`: a saved probe on another store, read exactly as its card says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tripwire.activations.store import ResidualStore
from tripwire.probes import LoadedProbe, auroc_ci, lead_times, load_probe, read_record, recall_at_thresholds
from tripwire.probes.datasets import token_dataset
from tripwire.probes.honesty import lexical_baseline_auroc
from tripwire.probes.scoring import statistic_values
from tripwire.probes.splits import SplitError, TooFewGroupsError

__all__ = ["StoreModel", "evaluate_probe"]


class StoreModel:
    """What `load_probe` checks a probe against, read from a store's manifest."""

    def __init__(self, store: ResidualStore):
        self.name = store.manifest.model_name
        self.d_model = store.manifest.d_model
        self.fingerprint = store.manifest.model_fingerprint


def evaluate_probe(probe_dir: Path, store_path: Path, label: str | None = None, n_boot: int = 300,
                   per_record: bool = False) -> dict[str, Any]:
    """AUROC per statistic, recall at the card's thresholds, lead time and the lexical baseline, all on
    the card's scored tokens with the card's window; with `per_record`, each record's reading too."""
    store = ResidualStore.open(store_path)
    probe: LoadedProbe = load_probe(probe_dir, model=StoreModel(store))
    card = probe.card
    label = label or card.label
    ds = token_dataset(store, card.hook_point, label, card.score_positions)
    readings = [read_record(probe, store, r) for r in ds.records]
    scores = [r.scores for r in readings]
    actions = [r.action_index for r in readings]
    out: dict[str, Any] = {"probe": str(probe_dir), "store": str(store_path), "label": label,
                           "transcripts": len(scores), "score_positions": card.score_positions.to_dict(),
                           "window": card.window, "auroc": {}}
    for stat in ("mean", "max", "last", "before_action", "streaming"):
        vals = statistic_values(scores, stat, action_token_indices=actions, window=card.window)
        out["auroc"][stat] = auroc_ci(ds.labels, np.asarray(vals, dtype=float), n_boot=n_boot).to_dict()
    if card.thresholds:
        positive = ds.labels == 1
        pos = [s for s, keep in zip(scores, positive, strict=True) if keep]
        pos_a = [a for a, keep in zip(actions, positive, strict=True) if keep]
        recall = recall_at_thresholds(pos, card.thresholds, action_token_indices=pos_a, n_boot=n_boot)
        out["recall_at_1pct_fpr"] = {k: v.to_dict() for k, v in recall.items()}
        with_a = [(s, a) for s, a in zip(pos, pos_a, strict=True) if a is not None]
        streaming = card.thresholds.get("streaming")
        if with_a and streaming is not None:
            out["lead_time"] = lead_times([s for s, _ in with_a], [a for _, a in with_a], streaming,
                                          window=card.window).to_dict()
    try:
        out["lexical_baseline"] = lexical_baseline_auroc(ds.texts, ds.labels, ds.groups)
    except (SplitError, TooFewGroupsError) as error:  # a check that could not run is null, with the reason
        out["lexical_baseline"] = None
        out["lexical_baseline_not_run"] = str(error)
    if per_record:
        out["records"] = [{"record_id": rec.record_id, **r.to_dict()} for rec, r in zip(ds.records, readings,
                                                                                        strict=True)]
    return out

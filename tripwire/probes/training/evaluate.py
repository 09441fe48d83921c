"""`tripwire eval`: a saved probe on another store, read exactly as its card says.

A probe scored on the records it was trained on looks better than it is, so `evaluate_probe` first
checks the store against the probe's training records (`training_records.json` beside the card: their
record ids, which are deterministic in model, dataset, transcript and text) and refuses an overlap
unless told otherwise; the output then says how many records overlapped. A probe without that file is
checked by its card's `training_data_hash` (equal only when the store holds exactly the training data).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tripwire.activations.store import ResidualStore
from tripwire.errors import UsageError
from tripwire.probes import LoadedProbe, auroc_ci, lead_times, load_probe, read_record, recall_at_thresholds
from tripwire.probes.datasets import token_dataset
from tripwire.probes.honesty import lexical_baseline_auroc
from tripwire.probes.scoring import statistic_values
from tripwire.probes.splits import SplitError, TooFewGroupsError

__all__ = ["TRAINING_RECORDS_FILE", "StoreModel", "evaluate_probe", "train_overlap", "write_training_records"]

TRAINING_RECORDS_FILE = "training_records.json"


def write_training_records(out: Path, record_ids: list[str], training_data_hash: str | None) -> Path:
    """The ids of the records a probe was fit on, beside its card, so `tripwire eval` can refuse them."""
    path = Path(out) / TRAINING_RECORDS_FILE
    path.write_text(json.dumps({"record_ids": sorted(record_ids), "training_data_hash": training_data_hash},
                               indent=0) + "\n")
    return path


def train_overlap(probe_dir: Path, probe: LoadedProbe, store: ResidualStore, label: str) -> dict[str, Any]:
    """How many of the store's records the probe was trained on: by record ids when the probe has
    `training_records.json`, else by the card's data hash (all or nothing); `checked_by` None when
    neither is available (the check could not run, so `n_overlap` is None too)."""
    ids_file = Path(probe_dir) / TRAINING_RECORDS_FILE
    records = [r for r in store.records() if label in r.labels]
    if ids_file.is_file():
        try:
            trained = set(json.loads(ids_file.read_text())["record_ids"])
        except (ValueError, KeyError, TypeError) as error:
            raise UsageError(f"{ids_file} is not a training-records file ({error}); re-save the probe.") from None
        n = sum(r.record_id in trained for r in records)
        return {"checked_by": "record ids", "n_overlap": n, "n_records": len(records), "n_training": len(trained)}
    card = probe.card
    if card.training_data_hash and card.training_records == len(records) and card.train_positions is not None:
        try:
            ds = token_dataset(store, card.hook_point, label, card.train_positions)
        except (ValueError, KeyError):
            return {"checked_by": None, "n_overlap": None, "n_records": len(records),
                    "note": "the store cannot be read with the probe's training positions"}
        same = ds.data_hash(store.content_digest(ds.records)) == card.training_data_hash
        return {"checked_by": "training data hash", "n_overlap": len(records) if same else 0,
                "n_records": len(records)}
    if card.training_data_hash:
        return {"checked_by": "training data hash", "n_overlap": 0, "n_records": len(records),
                "note": "record count differs from the card's training records, so not the training store; "
                        "a partial overlap cannot be seen without training_records.json"}
    return {"checked_by": None, "n_overlap": None, "n_records": len(records),
            "note": "the probe records neither training record ids nor a training data hash"}


class StoreModel:
    """What `load_probe` checks a probe against, read from a store's manifest."""

    def __init__(self, store: ResidualStore):
        self.name = store.manifest.model_name
        self.d_model = store.manifest.d_model
        self.fingerprint = store.manifest.model_fingerprint


def evaluate_probe(probe_dir: Path, store_path: Path, label: str | None = None, n_boot: int = 300,
                   per_record: bool = False, allow_train_overlap: bool = False) -> dict[str, Any]:
    """AUROC per statistic, recall at the card's thresholds, lead time and the lexical baseline, all on
    the card's scored tokens with the card's window; with `per_record`, each record's reading too.
    Refuses a store that holds the probe's training records unless `allow_train_overlap`."""
    store = ResidualStore.open(store_path)
    probe: LoadedProbe = load_probe(probe_dir, model=StoreModel(store))
    card = probe.card
    label = label or card.label
    overlap = train_overlap(probe_dir, probe, store, label)
    if overlap["n_overlap"] and not allow_train_overlap:
        raise UsageError(
            f"{store_path} holds {overlap['n_overlap']} of the records probe {probe_dir} was trained on "
            f"(checked by {overlap['checked_by']}); scores on training data overstate the probe. Evaluate on a "
            "store of held-out records, or pass --allow-train-overlap to score it anyway (the output says so).")
    if overlap["n_overlap"]:
        overlap["warning"] = (f"TRAINING DATA: {overlap['n_overlap']} of {overlap['n_records']} records were used "
                              "to train this probe (--allow-train-overlap); these numbers overstate it.")
    ds = token_dataset(store, card.hook_point, label, card.score_positions)
    readings = [read_record(probe, store, r) for r in ds.records]
    scores = [r.scores for r in readings]
    actions = [r.action_index for r in readings]
    out: dict[str, Any] = {"probe": str(probe_dir), "store": str(store_path), "label": label,
                           "transcripts": len(scores), "score_positions": card.score_positions.to_dict(),
                           "window": card.window, "train_overlap": overlap, "auroc": {}}
    if "warning" in overlap:
        out = {"warning": overlap["warning"], **out}
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

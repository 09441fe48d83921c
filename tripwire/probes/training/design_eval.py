"""Train and judge one probe design (identical-token pairs, scripted replies, or both) for one label:
a main split (train / validation / test, all by the data's own folds, so held-out wording stays held
out), layer x method selection on validation by the deployed streaming statistic, the realistic
development set that chooses between designs, and per-fold results with baselines (i)-(iv)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tripwire.activations.hooks import HookPoint, Site, hook_spec
from tripwire.errors import UsageError
from tripwire.probes.fold_eval import (
    FoldInputError,
    FoldSettings,
    evaluate_fold,
    score_rows,
    select_cell,
    stream,
)
from tripwire.probes.metrics import auroc_over_units
from tripwire.probes.sweep import selection_logloss
from tripwire.probes.training.design_data import REPLY, Design
from tripwire.probes.training.train import estimators
from tripwire.scenarios.datasets.splits import BY, FoldError, folds
from tripwire.scenarios.spec import Transcript

LAYER0 = str(HookPoint(0, "resid_pre"))


@dataclass(frozen=True)
class EvalSettings:
    layers: tuple[int, ...]
    methods: tuple[str, ...] = ("lr", "diffmean", "lda", "lat")
    C: float = 1e-3
    site: Site = "resid_post"
    max_folds: int = 5  # per split rule (leave-one-family-out may have more families)
    fold: FoldSettings = FoldSettings()

    def hook(self, layer: int) -> str:
        return hook_spec(layer, self.site)


def prototypes(settings: EvalSettings) -> dict[str, Any]:
    return estimators(list(settings.methods), settings.C)


def _present(transcripts: Sequence[Transcript], design: Design, source: str) -> list[Transcript]:
    have = {r.meta.get("transcript_id") for r, s in zip(design.records, design.sources, strict=True) if s == source}
    return [t for t in transcripts if t.id in have]


def main_split(design: Design, transcripts: Mapping[str, Sequence[Transcript]],
               main_by: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Per source: test = the first fold of its main rule; validation = the first fold of the same rule
    on the training side; train = the rest. Sources are unioned part by part."""
    parts: list[list[np.ndarray]] = [[], [], []]
    info: dict[str, Any] = {}
    for source in dict.fromkeys(design.sources):
        found = _present(transcripts[source], design, source)
        tried = [main_by.get(source, "family"), *[b for b in BY if b != main_by.get(source)]]
        for by in tried:
            try:
                outer = folds(found, by)[0]
                inner_set = [t for t in found if t.id in set(outer.train_ids)]
                inner = folds(inner_set, by)[0]
            except (FoldError, IndexError):
                continue
            ids = (inner.train_ids, inner.test_ids, outer.test_ids)
            idx = [design.index(i, source) for i in ids]
            if all(np.unique(design.labels[x]).size == 2 for x in idx):
                for k in range(3):
                    parts[k].append(idx[k])
                info[source] = {"by": by, "test_fold": outer.name, "val_fold": inner.name,
                                "dropped_pairs": outer.dropped + inner.dropped}
                break
        else:
            raise UsageError(f"no split rule of {list(BY)} gives {source} a train, validation and test side with both "
                             "labels; capture more of it (raise --limit).")
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test, info


def dev_metrics(est: Any, dev: Design | None, hook: str, settings: EvalSettings) -> dict[str, Any] | None:
    """AUROC of the streaming statistic on the realistic development set: over the window that ends at
    each reply's anchor, and over the whole reply (what the monitor reads live)."""
    if dev is None:
        return None
    units, over = dev.units()
    out: dict[str, Any] = {"n": len(dev), "n_positive": int(dev.labels.sum())}
    for name, policy in (("window", None), ("reply", REPLY)):
        rows, unreadable = [], []
        for i, (record, store) in enumerate(zip(dev.records, dev.stores, strict=True)):
            try:  # a dev reply whose anchor was not located has no window: left out and counted
                rows.append(store.activations(record, hook, dev.policy_of(i, policy)).float().numpy())
            except ValueError:
                rows.append(np.zeros((0, 1), dtype=np.float32))
                unreadable.append(str(record.meta.get("transcript_id", record.record_id)))
        out[f"{name}_left_out"] = unreadable
        keep = np.array([i for i, r in enumerate(rows) if len(r)], dtype=np.int64)
        if np.unique(dev.labels[keep]).size < 2:
            out[name] = None
            continue
        values = stream(score_rows(est, rows, keep), settings.fold.window)
        metric = auroc_over_units(dev.labels[keep], values, units[keep], over, n_boot=settings.fold.n_boot,
                                  seed=settings.fold.seed)
        out[name] = {**metric.to_dict(), "logloss": selection_logloss(dev.labels[keep], values)}
    return out


def select(design: Design, train: np.ndarray, val: np.ndarray, settings: EvalSettings
           ) -> tuple[tuple[int, str], dict[str, Any], Any]:
    protos = prototypes(settings)
    units, over = design.units()
    pairs = units if over == "pairs" else None
    (layer, method), rows, fitted = select_cell(
        protos, lambda layer: design.rows(settings.hook(layer)), list(settings.layers), design.labels, train, val,
        pair_ids=pairs, window=settings.fold.window, max_tokens=settings.fold.max_tokens, seed=settings.fold.seed)
    table = {"statistic": "streaming", "tie_break": "validation log-loss of the statistic",
             "rows": [{"layer": r.layer, "method": r.method, "val_auroc": r.val_auroc, "val_logloss": r.val_logloss}
                      for r in rows],
             "selected": {"layer": layer, "method": method}}
    return (layer, method), table, fitted[(layer, method)]


def fold_results(design: Design, layer: int, method: str, train: np.ndarray, tests: Mapping[str, np.ndarray],
                 settings: EvalSettings) -> dict[str, Any]:
    """The selected cell with baselines on given train/test index sets (one entry per test set)."""
    proto = prototypes(settings)[method]
    rows = design.rows(settings.hook(layer))
    rows0 = _layer0_rows(design)
    data = design.fold_data()
    out = {}
    for name, test in tests.items():
        try:
            out[name] = evaluate_fold(name, proto, rows, rows0, data, train, test, settings.fold)
        except FoldInputError as error:
            out[name] = {"fold": name, "skipped": str(error)}
    return out


def _layer0_rows(design: Design) -> list[np.ndarray] | None:
    hooks = design.stores[0].manifest.hook_points
    return design.rows(LAYER0) if LAYER0 in hooks else None


def per_fold(design: Design, transcripts: Mapping[str, Sequence[Transcript]], layer: int, method: str,
             settings: EvalSettings) -> dict[str, Any]:
    """Every split rule that the data supports, up to `max_folds` folds each (rules it does not support
    are listed with the reason)."""
    out: dict[str, Any] = {}
    for source in dict.fromkeys(design.sources):
        found = _present(transcripts[source], design, source)
        by_rule: dict[str, Any] = {}
        for by in BY:
            try:
                rule_folds = folds(found, by)[: settings.max_folds]
            except FoldError as error:
                by_rule[by] = {"skipped": str(error)}
                continue
            tests = {f.name: design.index(f.test_ids, source) for f in rule_folds}
            results = []
            for f in rule_folds:
                train = design.index(f.train_ids, source)
                res = fold_results(design, layer, method, train, {f.name: tests[f.name]}, settings)[f.name]
                results.append({**res, "held_out": {k: list(v) for k, v in f.held_out.items()},
                                "dropped_pairs": f.dropped})
            by_rule[by] = results
        out[source] = by_rule
    return out

"""Train and judge one probe design (identical-token pairs, scripted replies, or both) for one label:
a main split (train / validation / test, all by the data's own folds, so held-out wording stays held
out), layer x method selection on validation by the deployed streaming statistic with the null of that
selection (the grid's best cell on permuted labels), the realistic development set that chooses between
designs, and per-fold results with baselines (i)-(iv) where every outer fold selects its own cell on an
inner validation fold of its training side (nested), pooled per split rule with intervals over the
held-out groups (paraphrases, cue strings, families...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tripwire.activations.hooks import HookPoint, Site, hook_spec
from tripwire.activations.positions import SharedReply
from tripwire.errors import UsageError
from tripwire.probes.fold_eval import (
    FoldInputError,
    FoldSettings,
    control_key,
    evaluate_fold,
    grid_null,
    pooled_result,
    select_cell,
)
from tripwire.probes.metrics import auroc_ci
from tripwire.probes.permutation import PermutationBalanceError
from tripwire.probes.sweep import SweepRow, select_row, selection_logloss
from tripwire.probes.token_rows import score_rows, stream
from tripwire.probes.training.design_data import REPLY, Design
from tripwire.probes.training.design_verdict import unscored
from tripwire.probes.training.train import estimators
from tripwire.scenarios.datasets.splits import BY, FoldError, folds
from tripwire.scenarios.spec import Transcript

LAYER0 = str(HookPoint(0, "resid_pre"))
EARLY_LAYERS = (1, 2)  # baseline (iii) on identical-token pairs, where layer 0 ties by construction
GROUP_NAMES = {"family": "families", "body": "bodies", "situation": "situations", "paraphrase": "paraphrases",
               "cue": "cue strings", "kind": "kinds"}


@dataclass(frozen=True)
class EvalSettings:
    layers: tuple[int, ...]
    methods: tuple[str, ...] = ("lr", "diffmean", "lda", "lat")
    C: float = 1e-3
    site: Site = "resid_post"
    max_folds: int = 5  # per split rule (leave-one-family-out may have more families)
    fold: FoldSettings = FoldSettings()
    null_perms: int = 50  # permutations of the selection grid's null (each refits every layer x method cell)

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
        # every reply the figure leaves out, with the reason (e.g. a harmful reply that opens with its call)
        out[f"{name}_dropped"] = unscored(dev, np.arange(len(dev)), policy)
        keep = np.array([i for i, r in enumerate(rows) if len(r)], dtype=np.int64)
        if np.unique(dev.labels[keep]).size < 2:
            out[name] = None
            continue
        values = stream(score_rows(est, rows, keep), settings.fold.window)
        metric = auroc_ci(dev.labels[keep], values, groups=units[keep], over=over, n_boot=settings.fold.n_boot,
                                  seed=settings.fold.seed)
        out[name] = {**metric.to_dict(), "logloss": selection_logloss(dev.labels[keep], values)}
    return out


def select(design: Design, train: np.ndarray, val: np.ndarray, settings: EvalSettings
           ) -> tuple[tuple[int, str], dict[str, Any], Any]:
    """The layer x method cell with the best validation AUROC, its table, and beside it the best cell of
    the same grid refit on `settings.null_perms` balanced label permutations (`grid_null`)."""
    protos = prototypes(settings)
    units, over = design.units()
    pairs = units if over == "pairs" else None
    rows_at = lambda layer: design.rows(settings.hook(layer))  # noqa: E731
    (layer, method), rows, fitted = select_cell(
        protos, rows_at, list(settings.layers), design.labels, train, val,
        pair_ids=pairs, window=settings.fold.window, max_tokens=settings.fold.max_tokens, seed=settings.fold.seed)
    chosen = next(r for r in rows if (r.layer, r.method) == (layer, method))
    table: dict[str, Any] = {
        "statistic": "streaming", "tie_break": "validation log-loss of the statistic",
        "rows": [{"layer": r.layer, "method": r.method, "val_auroc": r.val_auroc, "val_logloss": r.val_logloss}
                 for r in rows],
        "selected": {"layer": layer, "method": method}}
    table["null_best_cell"] = None
    if settings.null_perms > 0:
        try:
            table["null_best_cell"] = grid_null(
                protos, rows_at, list(settings.layers), design.labels, train, val, observed=chosen.val_auroc,
                pair_ids=pairs, n_perm=settings.null_perms, window=settings.fold.window,
                max_tokens=settings.fold.max_tokens, seed=settings.fold.seed)
        except PermutationBalanceError as error:
            table["null_best_cell_note"] = f"not run: {error}"
    return (layer, method), table, fitted[(layer, method)]


class Controls:
    """Baseline (iii)'s rows, read once per design: the embedding layer where the tokens differ; layers 1
    and 2 on identical-token pairs (scored with `SharedReply`), where layer 0 ties by construction."""

    def __init__(self, design: Design, settings: EvalSettings) -> None:
        self.design, self.settings = design, settings
        self.hooks = set(design.stores[0].manifest.hook_points)
        self._rows: dict[int, list[np.ndarray]] = {}

    def _hook(self, layer: int) -> str:
        return LAYER0 if layer == 0 else self.settings.hook(layer)

    def layers_for(self, test: np.ndarray) -> tuple[int, ...]:
        pairs = all(isinstance(self.design.policy_of(int(i)), SharedReply) for i in test.tolist())
        wanted = EARLY_LAYERS if pairs else (0,)
        return tuple(x for x in wanted if self._hook(x) in self.hooks)

    def for_test(self, test: np.ndarray) -> dict[int, list[np.ndarray]]:
        out = {}
        for layer in self.layers_for(test):
            if layer not in self._rows:
                self._rows[layer] = self.design.rows(self._hook(layer))
            out[layer] = self._rows[layer]
        return out


def fold_results(design: Design, layer: int, method: str, train: np.ndarray, tests: Mapping[str, np.ndarray],
                 settings: EvalSettings, controls: Controls | None = None) -> dict[str, Any]:
    """The selected cell with baselines on given train/test index sets (one entry per test set)."""
    proto = prototypes(settings)[method]
    rows = design.rows(settings.hook(layer))
    controls = controls or Controls(design, settings)
    data = design.fold_data()
    out = {}
    for name, test in tests.items():
        try:
            out[name] = evaluate_fold(name, proto, rows, controls.for_test(test), data, train, test, settings.fold)
        except FoldInputError as error:
            out[name] = {"fold": name, "skipped": str(error)}
    return out


def _part(t: Transcript, by: str) -> str:
    """The transcript's value of split rule `by`: what that rule holds out, so an independent unit."""
    if by == "family":
        return str(t.parts.get("family", t.family))
    if by == "kind" and "kind" not in t.parts:
        return str(t.meta.get("kind", "?"))
    return str(t.parts.get(by, "?"))


@dataclass(eq=False)  # compared by identity: it holds index arrays
class _Plan:
    """One outer fold: its sides and the inner split of its training side that selects its cell."""

    name: str
    by: str
    train: np.ndarray
    test: np.ndarray
    inner: tuple[np.ndarray, np.ndarray, dict[str, Any]] | None
    extra: dict[str, Any]


def _inner_split(design: Design, found: Sequence[Transcript], train_ids: Sequence[str], by: str, source: str
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
    """Validation = the first fold of rule `by` (else of another rule) on the outer training side, as the
    main split chooses its validation part; None when no rule leaves both labels on both sides."""
    inside = set(train_ids)
    inner_set = [t for t in found if t.id in inside]
    for rule in (by, *[b for b in BY if b != by]):
        try:
            inner = folds(inner_set, rule)[0]
        except (FoldError, IndexError):
            continue
        tr, val = design.index(inner.train_ids, source), design.index(inner.test_ids, source)
        if all(np.unique(design.labels[x]).size == 2 for x in (tr, val)):
            return tr, val, {"by": rule, "val_fold": inner.name}
    return None


def _select_nested(design: Design, plans: Sequence[_Plan], settings: EvalSettings) -> dict[int, SweepRow]:
    """Each plan's cell, chosen on its inner validation fold; layers read once for all plans."""
    protos = prototypes(settings)
    units, over = design.units()
    pairs = units if over == "pairs" else None
    inner = {k: p.inner for k, p in enumerate(plans) if p.inner is not None}
    grid: dict[int, list[SweepRow]] = {k: [] for k in inner}
    for layer in settings.layers:
        rows_at = {layer: design.rows(settings.hook(layer))}.__getitem__
        for k, (tr, val, _) in inner.items():
            _, table, _ = select_cell(protos, rows_at, [layer], design.labels, tr, val, pair_ids=pairs,
                                      window=settings.fold.window, max_tokens=settings.fold.max_tokens,
                                      seed=settings.fold.seed)
            grid[k] += table
    return {k: select_row(table) for k, table in grid.items()}


def per_fold(design: Design, transcripts: Mapping[str, Sequence[Transcript]], settings: EvalSettings,
             main_split_info: Mapping[str, Mapping[str, Any]] | None = None, main_val: np.ndarray | None = None
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every split rule that the data supports, up to `max_folds` folds each (rules it does not support
    are listed with the reason). Each outer fold selects its own layer x method cell on an inner
    validation fold of its training side (nested; reported as `selected`), so no fold's test side chose
    what it is scored with; a fold of the main split's rule whose test side holds any of the main split's
    validation transcripts (`main_val`) is excluded (they chose the shipped cell).
    Returns (per source and rule, the folds; per source and rule, the pooled out-of-fold result with
    intervals over the held-out groups)."""
    data = design.fold_data()
    controls = Controls(design, settings)
    protos = prototypes(settings)
    out: dict[str, Any] = {}
    plans: list[_Plan] = []
    slots: dict[tuple[str, str], list[dict[str, Any] | _Plan]] = {}
    for source in dict.fromkeys(design.sources):
        found = _present(transcripts[source], design, source)
        main = (main_split_info or {}).get(source) or {}
        out[source] = {}
        for by in BY:
            try:
                rule_folds = folds(found, by)[: settings.max_folds]
            except FoldError as error:
                out[source][by] = {"skipped": str(error)}
                continue
            slot: list[dict[str, Any] | _Plan] = []
            for f in rule_folds:
                extra = {"held_out": {k: list(v) for k, v in f.held_out.items()}, "dropped_pairs": f.dropped}
                test = design.index(f.test_ids, source)
                if main.get("by") == by and main_val is not None and np.intersect1d(test, main_val).size:
                    slot.append({"fold": f.name, "excluded": f"the main split's validation fold "
                                 f"({main.get('val_fold')}: it selected the shipped layer and method); not a test side",
                                 **extra})
                    continue
                plan = _Plan(f.name, by, design.index(f.train_ids, source), test,
                             _inner_split(design, found, f.train_ids, by, source), extra)
                plans.append(plan)
                slot.append(plan)
            slots[(source, by)] = slot
    chosen = _select_nested(design, plans, settings)
    by_plan: dict[int, dict[str, Any]] = {}
    kept: dict[int, dict[str, np.ndarray]] = {}
    for layer in sorted({row.layer for row in chosen.values()}):
        rows = design.rows(settings.hook(layer))
        for k, row in chosen.items():
            if row.layer != layer:
                continue
            p, keep = plans[k], dict[str, np.ndarray]()
            try:
                res = evaluate_fold(p.name, protos[row.method], rows, controls.for_test(p.test), data, p.train, p.test,
                                    settings.fold, keep=keep)
                kept[k] = keep
            except FoldInputError as error:
                res = {"fold": p.name, "skipped": str(error)}
            by_plan[k] = {**res, "selected": {"layer": row.layer, "method": row.method, "val_auroc": row.val_auroc,
                                              "inner": p.inner[2] if p.inner else None}}
    pooled: dict[str, Any] = {}
    for (source, by), slot in slots.items():
        results = []
        for item in slot:
            if isinstance(item, dict):
                results.append(item)
                continue
            k = next(j for j, p in enumerate(plans) if p is item)
            results.append({**by_plan.get(k, {"fold": item.name, "skipped": "no inner split of its training side has "
                                              "both labels on both sides, so no cell could be selected"}),
                            **item.extra})
        out[source][by] = results
        mine = [k for k, p in enumerate(plans) if any(p is item for item in slot) and k in kept]
        pooled.setdefault(source, {})[by] = _pooled(design, transcripts[source], by, [plans[k] for k in mine],
                                                    [kept[k] for k in mine], controls, settings)
    return out, pooled


def _pooled(design: Design, transcripts: Sequence[Transcript], by: str, plans: Sequence[_Plan],
            kept: Sequence[dict[str, np.ndarray]], controls: Controls, settings: EvalSettings) -> dict[str, Any]:
    """One rule's out-of-fold values (`kept`, one dict per evaluated fold in `plans`) pooled, intervals over
    the rule's groups."""
    if not plans:
        return {"skipped": "no fold of this rule was evaluated"}
    idx = np.concatenate([p.test for p in plans])
    keys = set.intersection(*(set(k) for k in kept))
    values = {key: np.concatenate([k[key] for k in kept]) for key in keys}
    part = {t.id: _part(t, by) for t in transcripts}
    groups = np.array([part.get(str(design.records[i].meta.get("transcript_id")), "?") for i in idx.tolist()])
    layers = sorted({x for p in plans for x in controls.layers_for(p.test)})
    return pooled_result(design.labels[idx], values, groups, GROUP_NAMES.get(by, by),
                         control=control_key(layers) if layers else "iii_early_layer_probe",
                         folds=[p.name for p in plans], n_boot=settings.fold.n_boot, seed=settings.fold.seed)

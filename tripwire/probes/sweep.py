"""Layer x method sweep with grouped model selection.

Which layer and which estimator to trust is chosen on a validation split only; the reported numbers
come from a separate grouped test split, so selecting over many (layer, method) cells does not inflate
the headline result. The same split is used for every cell.

Selection reads the statistic that is deployed (by default `streaming`, the maximum running mean the
monitor thresholds) per validation transcript, and breaks ties (several cells at AUROC 1.000 are
common) by validation log-loss of that statistic, which still sees how far apart the classes are.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jaxtyping import Float
from numpy.typing import ArrayLike
from sklearn.base import clone
from tqdm.auto import tqdm

from tripwire.errors import TripwireError
from tripwire.probes.metrics import (
    UnitMetric,
    auroc,
    auroc_ci,
    balanced_accuracy_ci,
    best_balanced_threshold,
)
from tripwire.probes.scoring import DEFAULT_WINDOW, decision_scores, statistic_values
from tripwire.probes.splits import GroupedSplit, SplitError, grouped_split


class SweepInputError(TripwireError, ValueError):
    """Layer data that cannot be swept (mismatched lengths, inconsistent labels across layers)."""


@dataclass(frozen=True)
class LayerData:
    """Rows of one layer: one per transcript, or one per token with `transcript_ids`.

    With per-token rows, scores are averaged per transcript before computing metrics, so every metric
    is per transcript either way.
    """

    X: Float[np.ndarray, "row d"]
    y: np.ndarray
    groups: np.ndarray
    pair_ids: np.ndarray | None = None
    transcript_ids: np.ndarray | None = None

    @classmethod
    def coerce(cls, item: LayerData | Sequence[Any]) -> LayerData:
        if isinstance(item, LayerData):
            data = item
        elif len(item) in (3, 4):
            data = cls(*item)
        else:
            raise SweepInputError(
                f"layer data must be LayerData or (X, y, groups[, pair_ids]), got {len(item)} items."
            )
        X = np.asarray(data.X, dtype=np.float64)
        if X.ndim != 2:
            raise SweepInputError(f"X must be (rows, d_model), got shape {X.shape}.")
        n = X.shape[0]
        for name in ("y", "groups", "pair_ids", "transcript_ids"):
            v = getattr(data, name)
            if v is not None and len(v) != n:
                raise SweepInputError(f"{name} has {len(v)} entries for {n} rows of X; pass one per row.")
        opt = {
            k: None if getattr(data, k) is None else np.asarray(getattr(data, k))
            for k in ("pair_ids", "transcript_ids")
        }
        return cls(X, np.asarray(data.y), np.asarray(data.groups), **opt)


LayerSource = Mapping[int, LayerData | Sequence[Any]] | Callable[[int], LayerData | Sequence[Any]]


@dataclass(frozen=True)
class SweepRow:
    layer: int
    method: str
    val_auroc: float
    test_auroc: UnitMetric
    test_bacc: UnitMetric
    val_logloss: float = float("nan")
    val_statistic: str = "mean"

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "method": self.method,
            "val_statistic": self.val_statistic,
            "val_auroc": self.val_auroc,
            "val_logloss": self.val_logloss,
            "test_auroc": self.test_auroc.to_dict(),
            "test_bacc": self.test_bacc.to_dict(),
        }


@dataclass
class SweepResult:
    """Tidy table of every (layer, method) cell and the cell chosen by validation AUROC."""

    rows: list[SweepRow]
    selected: tuple[int, str]
    split_sizes: dict[str, int]
    n_boot: int
    best_estimator: Any = field(default=None, repr=False, compare=False)

    def row(self, layer: int, method: str) -> SweepRow:
        for r in self.rows:
            if (r.layer, r.method) == (layer, method):
                return r
        raise KeyError(f"no sweep row for layer={layer}, method={method!r}.")

    @property
    def selected_row(self) -> SweepRow:
        return self.row(*self.selected)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "selected": {"layer": self.selected[0], "method": self.selected[1]},
            "split_sizes": self.split_sizes,
            "n_boot": self.n_boot,
        }

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self) -> str:
        lines = [
            "| layer | method | val AUROC | val log-loss | test AUROC [95% CI] | test bal. acc [95% CI] | selected |",
            "|---:|---|---:|---:|---|---|:---:|",
        ]
        for r in self.rows:
            mark = "*" if (r.layer, r.method) == self.selected else ""
            lines.append(
                f"| {r.layer} | {r.method} | {r.val_auroc:.3f} | {r.val_logloss:.3f} | {r.test_auroc} | "
                f"{r.test_bacc} | {mark} |"
            )
        sel = self.selected_row
        sizes = ", ".join(f"{k}={v}" for k, v in self.split_sizes.items())
        lines.append("")
        lines.append(
            f"Selected by validation AUROC ({sel.val_statistic} statistic, ties by log-loss): layer {sel.layer}, "
            f"{sel.method}; test AUROC {sel.test_auroc} (grouped split, transcripts: {sizes}; intervals over "
            "transcripts)."
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


def fit_estimator(estimator: Any, X: np.ndarray, y: np.ndarray, pair_ids: np.ndarray | None = None) -> Any:
    """Fit, passing `pair_ids=` only to estimators whose `fit` accepts it (LAT)."""
    if pair_ids is not None and "pair_ids" in inspect.signature(estimator.fit).parameters:
        estimator.fit(X, y, pair_ids=pair_ids)
    else:
        estimator.fit(X, y)
    return estimator


def per_unit(
    scores: np.ndarray, y: np.ndarray, groups: np.ndarray, transcript_ids: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collapse per-token rows to per-transcript (mean score); identity for per-transcript rows."""
    if transcript_ids is None:
        return scores, y, groups
    _, first, inverse = np.unique(transcript_ids, return_index=True, return_inverse=True)
    mean_scores = np.bincount(inverse, weights=scores) / np.bincount(inverse)
    y_u = y[first]
    if np.any(y != y_u[inverse]):
        raise SweepInputError("a transcript has tokens with different labels; label transcripts, not tokens.")
    return mean_scores, y_u, groups[first]


def unit_statistic(
    scores: np.ndarray, y: np.ndarray, transcript_ids: np.ndarray | None, statistic: str, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-transcript `statistic` of per-token scores (rows of a transcript in token order) and labels;
    per-transcript rows pass through unchanged."""
    if transcript_ids is None:
        return scores, y
    ids, first = np.unique(transcript_ids, return_index=True)
    seqs = [scores[transcript_ids == t] for t in ids]
    return statistic_values(seqs, statistic, window=window), y[first]


def selection_logloss(y: np.ndarray, values: np.ndarray) -> float:
    """Log-loss of a 1-D logistic fit (C=1) on the standardised statistic: scale-free, so methods with
    uncalibrated scores compare, and smaller the further apart the classes lie (a tie-breaker when
    several cells separate validation perfectly)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    sd = float(values.std())
    z = ((values - values.mean()) / (sd if sd > 0 else 1.0)).reshape(-1, 1)
    clf = LogisticRegression(C=1.0).fit(z, y)
    return float(log_loss(y, clf.predict_proba(z)[:, 1], labels=[0, 1]))


def select_row(rows: Sequence[SweepRow]) -> SweepRow:
    """Highest validation AUROC; among equals (to 1e-9) the lowest validation log-loss; then the first."""
    return min(rows, key=lambda r: (-round(r.val_auroc, 9), r.val_logloss))


def _check_transcripts_in_one_group(data: LayerData) -> None:
    if data.transcript_ids is None:
        return
    pairs = {(t, g) for t, g in zip(data.transcript_ids.tolist(), data.groups.tolist(), strict=True)}
    if len(pairs) != len(set(data.transcript_ids.tolist())):
        raise SweepInputError("a transcript's tokens carry different groups; give each transcript one group.")


def run_sweep(
    data: LayerSource,
    methods: Mapping[str, Any],
    *,
    layers: Sequence[int] | None = None,
    split: GroupedSplit | None = None,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    n_boot: int = 1000,
    grouped_bootstrap: bool = False,
    progress: bool = True,
    val_statistic: str = "streaming",
    window: int = DEFAULT_WINDOW,
) -> SweepResult:
    """Fit every method at every layer on the train part; select on val AUROC of `val_statistic` per
    transcript (ties by val log-loss, `select_row`); report test metrics.

    `data` maps layer -> LayerData or (X, y, groups[, pair_ids]); a callable is called once per layer
    (lazy loading from a ResidualStore) and then needs `layers`. Balanced accuracy uses the score cut
    that maximises it on validation. `grouped_bootstrap` resamples groups instead of transcripts.
    With per-token rows, `streaming` reads each validation transcript's rows in the order given (so pass
    every scored token in order for the deployed statistic); per-transcript rows use the row's score.
    """
    if not methods:
        raise SweepInputError("no methods given; pass e.g. {'lr': LogisticProbe(C=1e-3)}.")
    if layers is None:
        if not isinstance(data, Mapping):
            raise SweepInputError("data is a callable; pass layers=[...] to say which layers to sweep.")
        layers = sorted(data)
    if not layers:
        raise SweepInputError("no layers to sweep.")
    load: Callable[[int], Any] = data.__getitem__ if isinstance(data, Mapping) else data
    first = LayerData.coerce(load(layers[0]))
    _check_transcripts_in_one_group(first)
    split = split or _split_for(first, fractions, seed)
    n_rows = first.X.shape[0]
    if max(int(p.max(initial=-1)) for p in (split.train, split.val, split.test)) >= n_rows:
        raise SweepInputError(f"the given split indexes rows beyond the {n_rows} rows of the data.")
    rows: list[SweepRow] = []
    fitted: dict[tuple[int, str], Any] = {}
    bar = tqdm(total=len(layers) * len(methods), desc="layer sweep", disable=not progress)
    for i, layer in enumerate(layers):
        d = first if i == 0 else LayerData.coerce(load(layer))
        if not (np.array_equal(d.y, first.y) and np.array_equal(d.groups, first.groups)):
            raise SweepInputError(
                f"layer {layer} has different labels or groups from layer {layers[0]}; every layer must "
                "hold the same rows in the same order."
            )
        for name, prototype in methods.items():
            bar.set_postfix(layer=layer, method=name)
            row, est = _evaluate_cell(d, split, layer, name, prototype, n_boot, seed, grouped_bootstrap,
                                      val_statistic, window)
            rows.append(row)
            fitted[(layer, name)] = est
            bar.update(1)
    bar.close()
    best = select_row(rows)
    selected = (best.layer, best.method)
    return SweepResult(rows, selected, _unit_sizes(first, split), n_boot, fitted[selected])


def _split_for(d: LayerData, fractions: tuple[float, float, float], seed: int) -> GroupedSplit:
    try:
        return grouped_split(d.groups, d.y, fractions=fractions, seed=seed)
    except SplitError as e:
        raise SweepInputError(f"cannot split the sweep data: {e}") from e


def _unit_sizes(d: LayerData, split: GroupedSplit) -> dict[str, int]:
    if d.transcript_ids is None:
        return split.sizes()
    return {k: len(np.unique(d.transcript_ids[getattr(split, k)])) for k in ("train", "val", "test")}


def _evaluate_cell(
    d: LayerData,
    split: GroupedSplit,
    layer: int,
    name: str,
    prototype: Any,
    n_boot: int,
    seed: int,
    grouped_bootstrap: bool,
    val_statistic: str,
    window: int,
) -> tuple[SweepRow, Any]:
    tr, va, te = split.train, split.val, split.test
    est = clone(prototype)
    fit_estimator(est, d.X[tr], d.y[tr], None if d.pair_ids is None else d.pair_ids[tr])

    def unit(idx: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.asarray(idx)
        tids = None if d.transcript_ids is None else d.transcript_ids[i]
        return per_unit(decision_scores(est, d.X[i]), d.y[i], d.groups[i], tids)

    s_val, y_val, _ = unit(va)
    s_te, y_te, g_te = unit(te)
    va_ids = None if d.transcript_ids is None else d.transcript_ids[va]
    stat_val, y_stat = unit_statistic(decision_scores(est, d.X[va]), d.y[va], va_ids, val_statistic, window)
    cut = best_balanced_threshold(y_val, s_val)
    boot_groups = g_te if grouped_bootstrap else None
    row = SweepRow(
        layer=layer,
        method=name,
        val_auroc=auroc(y_stat, stat_val),
        test_auroc=auroc_ci(y_te, s_te, n_boot=n_boot, seed=seed, groups=boot_groups),
        test_bacc=balanced_accuracy_ci(
            y_te, (s_te >= cut).astype(np.int64), n_boot=n_boot, seed=seed, groups=boot_groups
        ),
        val_logloss=selection_logloss(y_stat, stat_val),
        val_statistic=val_statistic if d.transcript_ids is not None else "row",
    )
    return row, est

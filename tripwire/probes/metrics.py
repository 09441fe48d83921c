"""Classification metrics with bootstrap percentile intervals over independent units.

A headline number carries an interval: probe datasets are small (hundreds of transcripts) and a point
AUROC alone overstates what a result shows. Resampling is by example or, when `groups` is given, by
group (template family, prompt, pair), which respects the dependence between transcripts rendered from
the same source. Below `MIN_UNITS` units there is no interval, only the point and a note saying why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from jaxtyping import Float, Int
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from tripwire.errors import TripwireError

MetricFn = Callable[[np.ndarray, np.ndarray], float]
Z95 = 1.959964


class MetricInputError(TripwireError, ValueError):
    """Labels or scores cannot be scored (one class only, mismatched lengths, NaNs)."""


MIN_UNITS = 10
"""Fewest independent units (groups, pairs, transcripts) a bootstrap interval is reported over: below
it, resampling a handful of clusters gives intervals that look tight and mean nothing."""


@dataclass(frozen=True)
class UnitMetric:
    """A point value with a bootstrap interval over `n_units` units named by `over` ("pairs",
    "families", "examples"), or with no interval (`low`/`high` None) and `note` saying why."""

    value: float
    low: float | None
    high: float | None
    over: str
    n_units: int
    n_boot: int = 0
    note: str | None = None
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnitMetric:
        """Read `to_dict`'s form, or an older report's (value, low, high, n_boot: units not recorded)."""
        value = float("nan") if d["value"] is None else float(d["value"])  # JSON writes NaN as null
        return cls(value, d.get("low"), d.get("high"), d.get("over", "units (not recorded)"),
                   int(d.get("n_units", 0)), int(d.get("n_boot", 0)), d.get("note"), float(d.get("confidence", 0.95)))

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def __str__(self) -> str:
        return interval_text(self.to_dict(), units=True)


def interval_text(m: Mapping[str, Any] | None, units: bool = False) -> str:
    """A metric's JSON (`UnitMetric.to_dict`, or an older report's) as "value [low, high]", or the value and
    why it has no interval; with `units`, what the interval is over ("/112 prompts") after it. None or no
    value: "n/a"."""
    if not m or m.get("value") is None:
        return "n/a"
    over = f" /{m['n_units']} {m.get('over', 'units')}" if units and m.get("n_units") is not None else ""
    if m.get("low") is None or m.get("high") is None:
        return f"{m['value']:.3f} (no interval: {m.get('note') or 'none recorded'}){over}"
    return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]{over}"


def _as_labels(y: ArrayLike) -> Int[np.ndarray, " n"]:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise MetricInputError(f"labels must be 1-D, got shape {arr.shape}; pass one label per example.")
    values = set(np.unique(arr).tolist())
    if not values <= {0, 1}:
        raise MetricInputError(f"labels must be 0/1, got values {sorted(values)[:5]}; binarise them first.")
    return arr.astype(np.int64)


def _check_pair(y: np.ndarray, s: np.ndarray) -> None:
    if s.ndim != 1 or s.shape[0] != y.shape[0]:
        raise MetricInputError(
            f"scores shape {s.shape} does not match labels shape {y.shape}; pass one score per label."
        )
    if not np.all(np.isfinite(s)):
        raise MetricInputError("scores contain NaN or inf; drop or fix those examples before scoring.")


def _auroc_unchecked(y: np.ndarray, s: np.ndarray) -> float:
    # Mann-Whitney U from average ranks: equals sklearn's roc_auc_score (ties count 1/2) and is fast
    # enough to run thousands of times inside a bootstrap.
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    return float((rankdata(s)[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _bacc_unchecked(y: np.ndarray, p: np.ndarray) -> float:
    pos = y == 1
    return float((np.mean(p[pos] == 1) + np.mean(p[~pos] == 0)) / 2)


def _validated(y: ArrayLike, values: ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    y_arr = _as_labels(y)
    v = np.asarray(values, dtype=np.float64)
    _check_pair(y_arr, v)
    if np.unique(y_arr).size < 2:
        raise MetricInputError(
            f"{what} needs both classes; all {y_arr.size} labels are "
            f"{int(y_arr[0]) if y_arr.size else '-'}. Use a split that has positives and negatives."
        )
    return y_arr, v


def auroc(y: ArrayLike, scores: ArrayLike) -> float:
    """AUROC of `scores` for binary labels `y`; raises when only one class is present."""
    return _auroc_unchecked(*_validated(y, scores, "AUROC"))


def balanced_accuracy(y: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean of per-class recall: robust to the class imbalance typical of misalignment datasets."""
    y_arr, p = _validated(y, y_pred, "balanced accuracy")
    return _bacc_unchecked(y_arr, _as_labels(p))


def bootstrap_metric(
    metric: MetricFn,
    y: ArrayLike,
    values: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
    over: str | None = None,
    confidence: float = 0.95,
    min_units: int = MIN_UNITS,
) -> UnitMetric:
    """`metric(y, values)` with a percentile bootstrap over independent units: whole `groups` when
    given (named by `over`, default "groups"), else single examples ("examples").

    With fewer than `min_units` units there is no interval (`low`/`high` None, `note` gives the count).
    Replicates that draw a single class are redrawn (they have no defined AUROC).
    """
    y_arr = np.asarray(y)
    v_arr = np.asarray(values)
    if y_arr.shape[0] != v_arr.shape[0]:
        raise MetricInputError(f"{y_arr.shape[0]} labels but {v_arr.shape[0]} values; lengths must match.")
    if not 0 < confidence < 1:
        raise MetricInputError(f"confidence must be in (0, 1), got {confidence}.")
    blocks = _blocks(y_arr.shape[0], groups)
    name = over or ("examples" if groups is None else "groups")
    point = float(metric(y_arr, v_arr))
    if len(blocks) < min_units:
        return UnitMetric(point, None, None, name, len(blocks), 0,
                          f"{len(blocks)} {name} < {min_units}: too few independent units for an interval",
                          confidence)
    if n_boot <= 0:
        return UnitMetric(point, None, None, name, len(blocks), 0, "n_boot=0: no interval requested", confidence)
    low, high = _percentile_interval(metric, y_arr, v_arr, blocks, n_boot, seed, confidence)
    return UnitMetric(point, low, high, name, len(blocks), n_boot, None, confidence)


def _percentile_interval(metric: MetricFn, y: np.ndarray, v: np.ndarray, blocks: list[np.ndarray], n_boot: int,
                         seed: int, confidence: float) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    reps: list[float] = []
    attempts = 0
    while len(reps) < n_boot:
        attempts += 1
        if attempts > 20 * n_boot:
            raise MetricInputError(
                f"only {len(reps)} of {n_boot} bootstrap replicates had both classes; the data has too few "
                "examples (or groups) of one class for an interval. Add examples or use n_boot=0."
            )
        pick = rng.integers(0, len(blocks), size=len(blocks))
        idx = np.concatenate([blocks[i] for i in pick])
        y_b = y[idx]
        if y_b.min() == y_b.max():
            continue
        reps.append(metric(y_b, v[idx]))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(reps), [alpha, 1.0 - alpha])
    return float(low), float(high)


def _blocks(n: int, groups: ArrayLike | None) -> list[Int[np.ndarray, " m"]]:
    if groups is None:
        return [np.array([i]) for i in range(n)]
    g = np.asarray(groups)
    if g.shape[0] != n:
        raise MetricInputError(f"{g.shape[0]} group labels for {n} examples; pass one group per example.")
    _, inverse = np.unique(g, return_inverse=True)
    return [np.flatnonzero(inverse == k) for k in range(int(inverse.max()) + 1)]


def auroc_ci(
    y: ArrayLike,
    scores: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
    over: str | None = None,
    confidence: float = 0.95,
    min_units: int = MIN_UNITS,
) -> UnitMetric:
    """AUROC with a bootstrap percentile interval over examples or `groups` (see `bootstrap_metric`)."""
    y_arr, s = _validated(y, scores, "AUROC")
    return bootstrap_metric(_auroc_unchecked, y_arr, s, n_boot=n_boot, seed=seed, groups=groups, over=over,
                            confidence=confidence, min_units=min_units)


def balanced_accuracy_ci(
    y: ArrayLike,
    y_pred: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
    over: str | None = None,
    confidence: float = 0.95,
    min_units: int = MIN_UNITS,
) -> UnitMetric:
    """Balanced accuracy of hard predictions with a bootstrap interval over examples or `groups`."""
    y_arr, p = _validated(y, y_pred, "balanced accuracy")
    return bootstrap_metric(_bacc_unchecked, y_arr, _as_labels(p), n_boot=n_boot, seed=seed, groups=groups,
                            over=over, confidence=confidence, min_units=min_units)


def best_balanced_threshold(y: ArrayLike, scores: ArrayLike) -> float:
    """Score cut that maximises balanced accuracy on (validation) data.

    Probe decision functions are not all centred at 0 (difference-of-means, LAT), so the cut for hard
    predictions is chosen on validation data and then applied unchanged to test data.
    """
    y_arr, s = _validated(y, scores, "choosing a threshold")
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order], y_arr[order]
    # Predicting positive for s >= s_desc[i] selects everything up to the LAST tie of s_desc[i].
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_desc) != 0), s_desc.size - 1]
    tpr = np.cumsum(y_desc)[last_of_tie] / y_desc.sum()
    tnr = 1 - np.cumsum(1 - y_desc)[last_of_tie] / (1 - y_desc).sum()
    return float(s_desc[last_of_tie[int(np.argmax(tpr + tnr))]])


def roc_points(
    y: ArrayLike, scores: ArrayLike
) -> tuple[Float[np.ndarray, " pt"], Float[np.ndarray, " pt"], Float[np.ndarray, " pt"]]:
    """(fpr, tpr, thresholds) of the ROC curve, for plotting."""
    from sklearn.metrics import roc_curve

    y_arr = _as_labels(y)
    s = np.asarray(scores, dtype=np.float64)
    _check_pair(y_arr, s)
    fpr, tpr, thr = roc_curve(y_arr, s)
    return fpr, tpr, thr


def within_group_auroc(y: ArrayLike, scores: ArrayLike, groups: ArrayLike) -> dict[str, Any]:
    """AUROC over (positive, negative) pairs of one group only (ties count half): what a score adds once the
    group (e.g. a prompt whose samples differ only in what was sampled) is fixed. `value` is None when no
    group holds both classes; `pairs` and `groups` say how much it rests on."""
    y_arr, s, g = np.asarray(y).astype(np.int64), np.asarray(scores, dtype=np.float64), np.asarray(groups)
    if not y_arr.shape == s.shape == g.shape:
        raise MetricInputError(f"labels {y_arr.shape}, scores {s.shape} and groups {g.shape} differ in shape; "
                               "pass one of each per example.")
    hits, pairs, used = 0.0, 0, 0
    for group in np.unique(g):
        m = g == group
        pos, neg = s[m][y_arr[m] == 1], s[m][y_arr[m] == 0]
        if pos.size and neg.size:
            diff = pos[:, None] - neg[None, :]
            hits += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
            pairs += diff.size
            used += 1
    return {"value": round(hits / pairs, 4) if pairs else None, "pairs": pairs, "groups": used}


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson 95% interval of a rate `k`/`n`: it stays inside [0, 1] and is honest at 0/n or n/n, where
    the normal approximation claims certainty. None when there are no samples (no interval)."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class HarmfulRate:
    """How many of a rollout's samples took the harmful action, with its Wilson 95% interval."""

    harmful: int
    samples: int

    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.harmful, self.samples)

    def describe(self) -> str:
        interval = self.interval()
        if interval is None:
            return "harmful action: 0/0 samples (no samples, no interval)"
        low, high = interval
        return (f"harmful action: {self.harmful}/{self.samples} samples = {self.harmful / self.samples:.1%} "
                f"(Wilson 95% CI {low:.1%} to {high:.1%})")

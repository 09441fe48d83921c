"""One train/test fold, evaluated the way the README reports it: the probe's transcript-level AUROC of
the deployed streaming statistic beside baselines (i)-(iv) on the same split and the same scored tokens,
each with an interval over independent units (pairs, or transcripts) only when there are >= 10, and a
verdict by one rule: a probe "beats the text" only if its interval's lower bound exceeds both the
streaming text monitor (ii) and the embedding-layer probe (iii).

The text monitors (i) and (ii) choose among word n-grams 1-3 and character n-grams, and their C, by
grouped cross-validation on the training side; each result names its variant and the strongest of the
two. (iv) is a permutation null: the probe method refit on >= 200 balanced permutations of the training
labels (mean, 95th percentile, p-value of the probe's AUROC).

Also the layer x method selection on a validation part (`select_cell`), which reads the same statistic.
Everything here works on per-transcript arrays; reading them from a store is the caller's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Float
from sklearn.base import clone

from tripwire.errors import TripwireError
from tripwire.probes.baselines import StreamingTextMonitor, random_direction_aurocs
from tripwire.probes.metrics import MetricWithCI, UnitMetric, auroc, auroc_over_units
from tripwire.probes.permutation import MIN_PERMUTATIONS, PermutationBalanceError, permutation_null
from tripwire.probes.scoring import DEFAULT_WINDOW, decision_scores, statistic_values
from tripwire.probes.sweep import SweepRow, fit_estimator, select_row, selection_logloss
from tripwire.probes.text_monitors import MonitorChoice, NgramTextMonitor

Rows = Sequence[Float[np.ndarray, "tok d"]]
STREAMING = "streaming"


class FoldInputError(TripwireError, ValueError):
    """A fold that cannot be evaluated (one class on a side, misaligned inputs)."""


@dataclass(frozen=True)
class FoldData:
    """Per-transcript facts a fold needs beside the activations: labels, the bootstrap unit (a pair id,
    or the transcript itself), the visible text with the character cut of every scored token, and the
    text of exactly the scored span."""

    labels: np.ndarray
    units: np.ndarray
    unit_name: str  # "pairs" or "transcripts": what an interval is over
    pair_ids: np.ndarray | None
    texts: list[str]
    cuts: list[np.ndarray]
    spans: list[str]

    def __post_init__(self) -> None:
        n = len(self.labels)
        sizes = {"units": len(self.units), "texts": len(self.texts), "cuts": len(self.cuts),
                 "spans": len(self.spans)}
        if self.pair_ids is not None:
            sizes["pair_ids"] = len(self.pair_ids)
        if bad := {k: v for k, v in sizes.items() if v != n}:
            raise FoldInputError(f"{n} labels but {bad}; pass one entry per transcript.")


def _check_side(data: FoldData, idx: np.ndarray, side: str) -> None:
    if np.unique(data.labels[idx]).size < 2:
        raise FoldInputError(f"the {side} side holds {idx.size} transcripts of one class; a fold needs both.")


def fit_rows(prototype: Any, rows: Rows, labels: np.ndarray, idx: np.ndarray, *,
             pair_ids: np.ndarray | None = None, max_tokens: int | None = 48, seed: int = 0) -> Any:
    """A `clone` of `prototype` fit on the token rows of transcripts `idx` (each transcript's label on
    all its rows; at most `max_tokens` rows per transcript, evenly spread, so long ones do not dominate)."""
    rng = np.random.default_rng(seed)
    X, y, p = [], [], []
    for i in idx.tolist():
        r = np.asarray(rows[i])
        if max_tokens and len(r) > max_tokens:
            r = r[np.sort(rng.choice(len(r), max_tokens, replace=False))]
        X.append(r)
        y.append(np.full(len(r), labels[i]))
        if pair_ids is not None:
            p.append(np.full(len(r), pair_ids[i], dtype=object))
    est = clone(prototype)
    return fit_estimator(est, np.concatenate(X).astype(np.float64), np.concatenate(y),
                         None if pair_ids is None else np.concatenate(p).astype(str))


def score_rows(est: Any, rows: Rows, idx: np.ndarray) -> list[Float[np.ndarray, " tok"]]:
    return [decision_scores(est, rows[i]) for i in idx.tolist()]


def stream(seqs: Sequence[np.ndarray], window: int) -> Float[np.ndarray, " n"]:
    """The deployed statistic per transcript: the maximum running mean over `window` tokens."""
    return statistic_values(seqs, STREAMING, window=window)


def verdict(probe: UnitMetric, text: UnitMetric | None, layer0: UnitMetric | None) -> str:
    """The README rule: "beats the text" only if the probe's lower bound exceeds (ii) and (iii)."""
    bars = [m.value for m in (text, layer0) if m is not None]
    if len(bars) < 2:
        return "undetermined: baseline (ii) or (iii) missing"
    if probe.low is None:
        return f"undetermined: no interval ({probe.note})"
    if probe.low > max(bars):
        return "beats the text"
    return "does not beat the text"


def strongest_text_monitor(monitors: Mapping[str, tuple[UnitMetric, MonitorChoice]]) -> dict[str, Any]:
    """The text baseline with the highest test AUROC and the variant it used, so a verdict can name it."""
    key, (metric, choice) = max(monitors.items(), key=lambda kv: kv[1][0].value)
    return {"baseline": key, "monitor": choice.name, "value": metric.value}


@dataclass(frozen=True)
class FoldSettings:
    window: int = DEFAULT_WINDOW
    max_tokens: int | None = 48
    n_boot: int = 500
    n_random: int = 50
    n_perm: int = MIN_PERMUTATIONS
    seed: int = 0


def evaluate_fold(name: str, prototype: Any, rows: Rows, rows0: Rows | None, data: FoldData,
                  train: np.ndarray, test: np.ndarray, settings: FoldSettings = FoldSettings()) -> dict[str, Any]:
    """Probe and baselines (i)-(iv) on one fold; AUROCs of transcript-level statistics on `test`."""
    _check_side(data, train, f"training side of fold {name}")
    _check_side(data, test, f"test side of fold {name}")
    s = settings
    y_tr, y_te = data.labels[train], data.labels[test]
    pairs = data.pair_ids

    def metric(values: np.ndarray) -> UnitMetric:
        return auroc_over_units(y_te, values, data.units[test], data.unit_name, n_boot=s.n_boot, seed=s.seed)

    def fit(r: Rows, labels: np.ndarray) -> Any:
        return fit_rows(prototype, r, labels, train, pair_ids=None if pairs is None else pairs,
                        max_tokens=s.max_tokens, seed=s.seed)

    est = fit(rows, data.labels)
    probe = metric(stream(score_rows(est, rows, test), s.window))
    units_tr = data.units[train]  # pairs (or transcripts) stay whole in the monitors' cross-validation
    span_monitor = NgramTextMonitor(seed=s.seed).fit([data.spans[i] for i in train], y_tr, units_tr)
    span = metric(span_monitor.score([data.spans[i] for i in test]))
    monitor = StreamingTextMonitor.order_aware(seed=s.seed).fit(
        [data.texts[i] for i in train], [data.cuts[i] for i in train], y_tr, units_tr)
    text = metric(stream(monitor.score_many([data.texts[i] for i in test], [data.cuts[i] for i in test]),
                         s.window))
    notes: dict[str, str] = {}

    def fit_or_tie(r: Rows, labels: np.ndarray, key: str) -> np.ndarray:
        """Streaming values of a refit; when the method finds no direction (both classes have identical
        rows, as layer 0 has on identical-token pairs), every transcript ties, so AUROC is 0.5 exactly."""
        try:
            return stream(score_rows(fit(r, labels), r, test), s.window)
        except ValueError as error:
            notes[key] = f"no direction to fit ({error}); all test transcripts tie"
            return np.zeros(test.size)

    layer0 = None if rows0 is None else metric(fit_or_tie(rows0, data.labels, "iii_layer0_probe"))

    def refit_on(labels_tr: np.ndarray) -> float:
        """Test AUROC of the probe method refit on permuted training labels (true test labels)."""
        permuted = data.labels.copy()
        permuted[train] = labels_tr
        return auroc(y_te, fit_or_tie(rows, permuted, "iv_permutation_null"))

    null: dict[str, Any] | None = None
    try:
        null = {**permutation_null(refit_on, y_tr, observed=probe.value, n_perm=s.n_perm, seed=s.seed,
                                   pair_ids=None if pairs is None else pairs[train]).to_dict(),
                "permuted": "training labels, within pairs" if pairs is not None else "training labels"}
    except PermutationBalanceError as error:  # e.g. pairs holding one class: no fair null, say so
        notes["iv_permutation_null"] = f"not run: {error}"
    coef = np.asarray(getattr(est, "coef_", np.zeros((1, 1)))).reshape(-1)
    intercept = float(np.asarray(getattr(est, "intercept_", [0.0])).reshape(-1)[0])
    rand = random_direction_aurocs([rows[i] for i in test.tolist()], y_te, coef, intercept,
                                   n_random=s.n_random, seed=s.seed, window=s.window)
    return {
        "fold": name,
        "n_train": int(train.size), "n_test": int(test.size),
        "n_test_positive": int(y_te.sum()),
        "probe": probe.to_dict(),
        "baselines": {
            "i_span_bag_of_words": {**span.to_dict(), "monitor": span_monitor.chosen_.to_dict()},
            "ii_streaming_text_monitor": {**text.to_dict(), "monitor": monitor.chosen_.to_dict()},
            "iii_layer0_probe": None if layer0 is None else layer0.to_dict(),
            "iv_permutation_null": null,
            "iv_random_directions": {"mean": float(rand.mean()), "p95": float(np.quantile(rand, 0.95)),
                                     "n": int(rand.size), "norm_matched": True},
        },
        "strongest_text_monitor": strongest_text_monitor({
            "i_span_bag_of_words": (span, span_monitor.chosen_),
            "ii_streaming_text_monitor": (text, monitor.chosen_)}),
        "verdict": verdict(probe, text, layer0),
        "notes": notes,
    }


def select_cell(
    prototypes: Mapping[str, Any],
    rows_at: Callable[[int], Rows],
    layers: Sequence[int],
    labels: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    *,
    pair_ids: np.ndarray | None = None,
    window: int = DEFAULT_WINDOW,
    max_tokens: int | None = 48,
    seed: int = 0,
) -> tuple[tuple[int, str], list[SweepRow], dict[tuple[int, str], Any]]:
    """Fit every method at every layer on `train`; validation AUROC of the streaming statistic over
    every scored token of each `val` transcript; ties by validation log-loss (`select_row`)."""
    rows_out: list[SweepRow] = []
    fitted: dict[tuple[int, str], Any] = {}
    y_val = labels[val]
    empty = MetricWithCI(float("nan"), float("nan"), float("nan"))
    for layer in layers:
        rows = rows_at(layer)
        for name, proto in prototypes.items():
            est = fit_rows(proto, rows, labels, train, pair_ids=pair_ids, max_tokens=max_tokens, seed=seed)
            values = stream(score_rows(est, rows, val), window)
            rows_out.append(SweepRow(layer, name, auroc(y_val, values), empty, empty,
                                     val_logloss=selection_logloss(y_val, values), val_statistic=STREAMING))
            fitted[(layer, name)] = est
    best = select_row(rows_out)
    return (best.layer, best.method), rows_out, fitted

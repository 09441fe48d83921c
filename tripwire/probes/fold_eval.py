"""One train/test fold, evaluated the way the README reports it: the probe's transcript-level AUROC of
the deployed streaming statistic beside baselines (i)-(iv) on the same split and the same scored tokens,
each with an interval over independent units (pairs, or transcripts) only when there are >= 10, and a
verdict by one rule: a probe "beats the text" only if its interval's lower bound exceeds both the
streaming text monitor (ii) and the embedding-layer probe (iii).

The text monitors (i) and (ii) choose among word n-grams 1-3 and character n-grams, and their C, by
grouped cross-validation on the training side; each result names its variant and the strongest of the
two. (iv) is a permutation null: the probe method refit on >= 200 balanced permutations of the training
labels (mean, 95th percentile, p-value of the probe's AUROC).

Baseline (iii) is the same method on an early layer's activations: the embedding layer where the tokens
differ, layers 1 and 2 on identical-token pairs (where layer 0 ties by construction); its key names the
layers ("iii_layer0_probe", "iii_layer1_2_probe") and the verdict compares with the strongest of them.

Also the layer x method selection on a validation part (`select_cell`), which reads the same statistic,
the null of that selection (`grid_null`: the best validation AUROC of the whole grid refit on permuted
labels), and a pooled out-of-fold result over independent groups (`pooled_result`). Everything here
works on per-transcript arrays; reading them from a store is the caller's job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tripwire.errors import TripwireError
from tripwire.probes.baselines import StreamingTextMonitor, random_direction_aurocs
from tripwire.probes.metrics import UnitMetric, auroc, auroc_ci
from tripwire.probes.permutation import (
    MIN_PERMUTATIONS,
    PermutationBalanceError,
    balanced_permutations,
    null_summary,
    permutation_null,
)
from tripwire.probes.scoring import DEFAULT_WINDOW
from tripwire.probes.sweep import SweepRow, select_row, selection_logloss
from tripwire.probes.text_monitors import MonitorChoice, NgramTextMonitor
from tripwire.probes.token_rows import (
    STREAMING,
    PermutedRefits,
    Rows,
    fit_rows,
    score_rows,
    stream,
)


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


def verdict(probe: UnitMetric, text: UnitMetric | None, control: UnitMetric | None) -> str:
    """The README rule: "beats the text" only if the probe's lower bound exceeds (ii) and (iii) (for
    (iii), the strongest early-layer control the fold has)."""
    bars = [m.value for m in (text, control) if m is not None]
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


def control_key(layers: Sequence[int]) -> str:
    """The report key of baseline (iii), naming its layers: "iii_layer0_probe", "iii_layer1_2_probe"."""
    return f"iii_layer{'_'.join(str(x) for x in layers)}_probe"


def is_control_key(key: str) -> bool:
    return key.startswith("iii_")


def evaluate_fold(name: str, prototype: Any, rows: Rows, controls: Mapping[int, Rows] | None, data: FoldData,
                  train: np.ndarray, test: np.ndarray, settings: FoldSettings = FoldSettings(), *,
                  keep: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Probe and baselines (i)-(iv) on one fold; AUROCs of transcript-level statistics on `test`.
    `controls` maps an early layer to its rows (baseline iii: the same method refit there); `keep`, when
    given, receives each score's per-transcript test values ("probe", "i", "ii", "iii") for pooling."""
    _check_side(data, train, f"training side of fold {name}")
    _check_side(data, test, f"test side of fold {name}")
    s = settings
    y_tr, y_te = data.labels[train], data.labels[test]
    pairs = data.pair_ids

    def metric(values: np.ndarray) -> UnitMetric:
        return auroc_ci(y_te, values, groups=data.units[test], over=data.unit_name, n_boot=s.n_boot, seed=s.seed)

    def fit(r: Rows, labels: np.ndarray) -> Any:
        return fit_rows(prototype, r, labels, train, pair_ids=None if pairs is None else pairs,
                        max_tokens=s.max_tokens, seed=s.seed)

    est = fit(rows, data.labels)
    probe_values = stream(score_rows(est, rows, test), s.window)
    probe = metric(probe_values)
    units_tr = data.units[train]  # pairs (or transcripts) stay whole in the monitors' cross-validation
    span_monitor = NgramTextMonitor(seed=s.seed).fit([data.spans[i] for i in train], y_tr, units_tr)
    span_values = span_monitor.score([data.spans[i] for i in test])
    span = metric(span_values)
    monitor = StreamingTextMonitor.order_aware(seed=s.seed).fit(
        [data.texts[i] for i in train], [data.cuts[i] for i in train], y_tr, units_tr)
    text_values = stream(monitor.score_many([data.texts[i] for i in test], [data.cuts[i] for i in test]),
                         s.window)
    text = metric(text_values)
    notes: dict[str, str] = {}

    def fit_or_tie(r: Rows, labels: np.ndarray, key: str) -> np.ndarray:
        """Streaming values of a refit; when the method finds no direction (both classes have identical
        rows, as layer 0 has on identical-token pairs), every transcript ties, so AUROC is 0.5 exactly."""
        try:
            return stream(score_rows(fit(r, labels), r, test), s.window)
        except ValueError as error:
            notes[key] = f"no direction to fit ({error}); all test transcripts tie"
            return np.zeros(test.size)

    ckey = control_key(sorted(controls)) if controls else "iii_early_layer_probe"
    control_values = {layer: fit_or_tie(r, data.labels, ckey if len(controls or {}) == 1 else f"{ckey}, layer {layer}")
                      for layer, r in sorted((controls or {}).items())}
    control_metrics = {layer: metric(v) for layer, v in control_values.items()}
    strongest_layer = max(control_metrics, key=lambda k: control_metrics[k].value) if control_metrics else None
    control = None if strongest_layer is None else control_metrics[strongest_layer]

    refits = PermutedRefits(prototype, rows, train, max_tokens=s.max_tokens, seed=s.seed)

    def refit_on(labels_tr: np.ndarray) -> float:
        """Test AUROC of the probe method refit on permuted training labels (true test labels)."""
        permuted = data.labels.copy()
        permuted[train] = labels_tr
        try:
            return auroc(y_te, stream(refits.sequences(permuted, test, pairs), s.window))
        except ValueError as error:
            notes["iv_permutation_null"] = f"no direction to fit ({error}); all test transcripts tie"
            return 0.5

    null: dict[str, Any] | None = None
    try:
        null = {**permutation_null(refit_on, y_tr, observed=probe.value, n_perm=s.n_perm, seed=s.seed,
                                   pair_ids=None if pairs is None else pairs[train]).to_dict(),
                "permuted": "training labels, within pairs" if pairs is not None else "training labels"}
    except PermutationBalanceError as error:  # e.g. pairs holding one class: no fair null, say so
        notes["iv_permutation_null"] = f"not run: {error}"
    coef = np.asarray(getattr(est, "coef_", np.zeros((1, 1)))).reshape(-1)
    intercept = float(np.asarray(getattr(est, "intercept_", [0.0])).reshape(-1)[0])
    if keep is not None:
        keep.update({"probe": probe_values, "i": span_values, "ii": text_values})
        if strongest_layer is not None:
            keep["iii"] = control_values[strongest_layer]
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
            ckey: None if control is None else {
                **control.to_dict(), "layer": strongest_layer,
                "by_layer": {str(k): m.to_dict() for k, m in control_metrics.items()}},
            "iv_permutation_null": null,
            "iv_random_directions": {"mean": float(rand.mean()), "p95": float(np.quantile(rand, 0.95)),
                                     "n": int(rand.size), "norm_matched": True},
        },
        "strongest_text_monitor": strongest_text_monitor({
            "i_span_bag_of_words": (span, span_monitor.chosen_),
            "ii_streaming_text_monitor": (text, monitor.chosen_)}),
        "verdict": verdict(probe, text, control),
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
    empty = UnitMetric(float("nan"), None, None, "examples", 0, note="the selection scores validation only")
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


def grid_null(prototypes: Mapping[str, Any], rows_at: Callable[[int], Rows], layers: Sequence[int],
              labels: np.ndarray, train: np.ndarray, val: np.ndarray, *, observed: float,
              pair_ids: np.ndarray | None = None, n_perm: int = 50, window: int = DEFAULT_WINDOW,
              max_tokens: int | None = 48, seed: int = 0) -> dict[str, Any]:
    """The null of a selection: the whole layer x method grid of `select_cell` refit on `n_perm` balanced
    permutations of the training and validation labels (pairs kept whole; `permutation.py`), each
    permutation's best validation AUROC; `observed` (the selected cell's) against that distribution. A
    pick that is only the best of many null cells has a large p-value here."""
    both = np.concatenate([train, val])
    perms, balance = balanced_permutations(labels[both], pair_ids=None if pair_ids is None else pair_ids[both],
                                           n_perm=n_perm, seed=seed)
    best = np.full(n_perm, -np.inf)
    start = time.perf_counter()
    for layer in layers:
        rows = rows_at(layer)
        for proto in prototypes.values():
            refits = PermutedRefits(proto, rows, train, max_tokens=max_tokens, seed=seed)
            for k in range(n_perm):
                permuted = labels.copy()
                permuted[both] = perms[k]
                try:
                    value = auroc(permuted[val], stream(refits.sequences(permuted, val, pair_ids), window))
                except ValueError:  # no direction on these labels: every transcript ties
                    value = 0.5
                best[k] = max(best[k], value)
    seconds = time.perf_counter() - start
    summary = null_summary(observed, best, balance).to_dict()
    return {**summary, "statistic": "maximum validation AUROC over the grid", "cells": len(layers) * len(prototypes),
            "permuted": "training and validation labels" + (", within pairs" if pair_ids is not None else ""),
            "seconds": round(seconds, 1), "seconds_per_permutation": round(seconds / n_perm, 2)}


def pooled_result(labels: np.ndarray, values: Mapping[str, np.ndarray], groups: np.ndarray, over: str, *,
                  control: str = "iii_early_layer_probe", folds: Sequence[str] = (), n_boot: int = 500,
                  seed: int = 0) -> dict[str, Any]:
    """Out-of-fold values of a split rule's folds pooled (one value per test transcript, each from the fold
    that held it out), every AUROC with an interval over the held-out groups `over` (paraphrases, cue
    strings, families...) and only with >= MIN_UNITS of them: the number of independent units a claim
    about new wording rests on, not the number of pairs. The verdict rule as for one fold."""
    y = np.asarray(labels)
    g = np.asarray(groups).astype(str)
    for name, v in values.items():
        if len(v) != y.size:
            raise FoldInputError(f"pooled values {name!r} have {len(v)} entries for {y.size} labels; pass one each.")

    def metric(key: str) -> UnitMetric | None:
        return auroc_ci(y, values[key], groups=g, over=over, n_boot=n_boot, seed=seed) if key in values else None

    probe, text, span, early = metric("probe"), metric("ii"), metric("i"), metric("iii")
    if probe is None:
        raise FoldInputError(f"pooled values {sorted(values)} lack 'probe'; pass the probe's out-of-fold values.")
    return {
        "folds": list(folds), "n_test": int(y.size), "n_test_positive": int(y.sum()),
        "over": over, "n_groups": int(np.unique(g).size),
        "probe": probe.to_dict(),
        "baselines": {"i_span_bag_of_words": None if span is None else span.to_dict(),
                      "ii_streaming_text_monitor": None if text is None else text.to_dict(),
                      control: None if early is None else early.to_dict()},
        "verdict": verdict(probe, text, early),
    }

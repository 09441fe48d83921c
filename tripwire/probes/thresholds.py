"""Threshold calibration at a fixed false-positive rate on benign control transcripts.

A monitor is only useful at a false-alarm rate people tolerate, so every statistic is thresholded on an
unlabelled benign `control` set (>= 1,000 transcripts) at 1% FPR, and recall on positives is reported
at that operating point. The bootstrap interval on the threshold says how stable the cut is given the
size of the control set.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

import numpy as np
from jaxtyping import Float

from tripwire.errors import TripwireError
from tripwire.probes.metrics import MIN_UNITS, UnitMetric
from tripwire.probes.scoring import (
    DEFAULT_K,
    DEFAULT_WINDOW,
    STATISTICS,
    ScoringError,
    action_list,
    statistic_values,
    transcript_statistic,
)

MIN_CONTROL = 1000  # below this many control transcripts the 1% tail rests on a handful of them
DEFAULT_FPR = 0.01  # the false-positive rate thresholds are calibrated to, unless a caller says otherwise


class CalibrationError(TripwireError, ValueError):
    """The control set cannot support the requested false-positive rate."""


@dataclass(frozen=True)
class Threshold:
    """A calibrated cut for one statistic: a transcript is flagged when statistic >= value.

    `ci_low`/`ci_high` bound the threshold over bootstrap resamples of the `n_control` control
    transcripts; `calibration_hash` names that control set. Fields a card migrated from format 1 did
    not record are None (unknown), never guessed.
    """

    value: float
    ci_low: float | None
    ci_high: float | None
    fpr_target: float | None
    realised_fpr: float | None
    n_control: int | None
    statistic: str = ""
    window: int = DEFAULT_WINDOW
    k: int = DEFAULT_K
    calibration_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Threshold:
        """Typed: a string where a number belongs, or an unknown key, is a `ValueError` naming it."""
        names = {f.name for f in fields(cls)}
        if unknown := sorted(set(d) - names):
            raise ValueError(f"unknown threshold keys {unknown}; expected some of {sorted(names)}")
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        if missing := sorted(required - set(d)):
            raise ValueError(f"threshold keys {missing} are missing (null where unknown)")
        numbers = {"value": False, "ci_low": True, "ci_high": True, "fpr_target": True, "realised_fpr": True}
        for key, optional in numbers.items():
            v = d.get(key)
            if (v is None and not optional) or (v is not None and (isinstance(v, bool) or
                                                                  not isinstance(v, (int, float)))):
                raise ValueError(f"threshold {key} must be a number, got {v!r}")
        for key in ("window", "k", "n_control"):
            v = d.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"threshold {key} must be a non-negative integer, got {v!r}")
        if not math.isfinite(float(d["value"])):
            raise ValueError(f"threshold value must be finite, got {d['value']!r}")
        return cls(**d)


def threshold_at_fpr(values: Float[np.ndarray, " n"], fpr: float) -> float:
    """Smallest value such that at most `fpr` of `values` are >= it.

    With m = floor(fpr * n) allowed alarms, that is the next float above the (m+1)-th largest value;
    ties at that value are therefore all below the cut, so the realised FPR never exceeds the target.
    """
    _check_fpr(fpr)
    v = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if v.size == 0:
        raise CalibrationError("no control values given; calibration needs control transcripts.")
    m = math.floor(fpr * v.size + 1e-9)  # fpr < 1 keeps m < n
    return float(np.nextafter(v[m], np.inf))


def _check_fpr(fpr: float) -> None:
    if not 0 < fpr < 1:
        raise CalibrationError(f"fpr must be in (0, 1), got {fpr}; e.g. fpr=0.01 for 1%.")


def calibrate(
    control_scores: Sequence[Any],
    fpr: float = DEFAULT_FPR,
    stats: Sequence[str] = STATISTICS,
    window: int = DEFAULT_WINDOW,
    *,
    k: int = DEFAULT_K,
    control_action_token_indices: Sequence[int | None] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_control: int = MIN_CONTROL,
    calibration_hash: str | None = None,
) -> dict[str, Threshold]:
    """Per-statistic thresholds at `fpr` on control transcripts (per-token score arrays).

    The streaming statistic is the maximum running mean over `window` tokens, so its threshold bounds
    the share of control transcripts on which the online monitor EVER fires. The interval resamples
    control transcripts and recomputes the threshold. `before_action` on control transcripts without
    an action uses the whole-transcript mean (see `transcript_statistic`).
    """
    _check_fpr(fpr)
    n = len(control_scores)
    if n < min_control:
        raise CalibrationError(
            f"{n} control transcripts given, calibration needs >= {min_control} for a stable {fpr:.0%} FPR "
            "cut; generate more benign control transcripts (or lower min_control for a smoke test)."
        )
    if n * fpr < 1:
        raise CalibrationError(
            f"{n} control transcripts cannot resolve fpr={fpr} (needs >= {math.ceil(1 / fpr)})."
        )
    rng = np.random.default_rng(seed)
    boot_idx = [rng.integers(0, n, size=n) for _ in range(n_boot)]
    alpha = (1.0 - confidence) / 2.0
    out: dict[str, Threshold] = {}
    for stat in stats:
        vals = statistic_values(
            control_scores, stat, action_token_indices=control_action_token_indices, k=k, window=window
        )
        thr = threshold_at_fpr(vals, fpr)
        if boot_idx:
            reps = np.array([threshold_at_fpr(vals[i], fpr) for i in boot_idx])
            low, high = (float(q) for q in np.quantile(reps, [alpha, 1 - alpha]))
        else:
            low = high = thr
        out[stat] = Threshold(
            value=thr,
            ci_low=low,
            ci_high=high,
            fpr_target=fpr,
            realised_fpr=float(np.mean(vals >= thr)),
            n_control=n,
            statistic=stat,
            window=window,
            k=k,
            calibration_hash=calibration_hash,
        )
    return out


def recall_at_thresholds(
    positive_scores: Sequence[Any],
    thresholds: Mapping[str, Threshold],
    *,
    action_token_indices: Sequence[int | None] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    min_units: int = MIN_UNITS,
) -> dict[str, UnitMetric]:
    """Recall of each calibrated statistic on positive transcripts, with a bootstrap interval over them.

    Every positive stays in the denominator: one with no scored tokens (an empty window, e.g. a reply
    that opens with the tool call under a before-the-call policy) is a miss for every statistic, and so
    is one whose action is at token 0 for `before_action` (nothing preceded it). Dropping them instead
    would report the recall of the easy cases only. The interval resamples positives with the threshold
    held fixed (the threshold's own uncertainty is `Threshold.ci_low/ci_high`), and is given only over
    at least `min_units` positives: below that the recall comes with no interval and a note saying why.
    """
    n = len(positive_scores)
    if n == 0:
        raise ScoringError("no positive transcripts given; recall needs at least one.")
    actions = action_list(action_token_indices, n)
    over = "positive transcripts"
    note = (f"{n} {over} < {min_units}: too few independent units for an interval" if n < min_units
            else "n_boot=0: no interval requested" if n_boot <= 0 else None)
    rng = np.random.default_rng(seed)
    boot_idx = [] if note else [rng.integers(0, n, size=n) for _ in range(n_boot)]
    out: dict[str, UnitMetric] = {}
    for stat, thr in thresholds.items():
        hit = np.array([_hit(s, thr.statistic or stat, thr, a) for s, a in zip(positive_scores, actions, strict=True)],
                       dtype=np.float64)
        point = float(hit.mean())
        if note:
            out[stat] = UnitMetric(point, None, None, over, n, 0, note)
            continue
        reps = np.array([hit[i].mean() for i in boot_idx])
        low, high = (float(q) for q in np.quantile(reps, [0.025, 0.975]))
        out[stat] = UnitMetric(point, low, high, over, n, n_boot)
    return out


def _hit(scores: Any, stat: str, thr: Threshold, action: int | None) -> bool:
    """Whether one positive reaches `thr`; no scored tokens, or nothing before an action at token 0 for
    `before_action`, is a miss (the monitor had nothing to read)."""
    if np.asarray(scores).size == 0 or (stat == "before_action" and action == 0):
        return False
    value = transcript_statistic(scores, stat, action_token_index=action, k=thr.k, window=thr.window)
    return bool(value >= thr.value)


def false_alarms_per_1000_tokens(benign_scores: Sequence[Any], threshold: float, window: int) -> float:
    """Monitor firings per 1,000 scored benign tokens. A transcript fires at most once (the monitor
    stops it there), so this is (benign transcripts that ever cross) / (their scored tokens) x 1000."""
    n_tokens = sum(len(s) for s in benign_scores)
    if n_tokens == 0:
        raise CalibrationError("no benign tokens given; false alarms per 1,000 tokens need some.")
    fired = statistic_values(benign_scores, "streaming", window=window) >= threshold
    return float(fired.sum() * 1000.0 / n_tokens)


def calibrate_on_sets(
    benign: Mapping[str, Sequence[Any]],
    fpr: float = DEFAULT_FPR,
    window: int = DEFAULT_WINDOW,
    *,
    min_sizes: Mapping[str, int] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    hashes: Mapping[str, str | None] | None = None,
) -> tuple[dict[str, Threshold], dict[str, dict[str, Any]]]:
    """Thresholds that hold `fpr` on EVERY benign set (e.g. generic control text and benign replies to
    the scenarios): each statistic's cut is the highest of the per-set cuts. Also, per set, the realised
    FPR of each chosen cut and the streaming monitor's false alarms per 1,000 tokens, IN SAMPLE (on the
    transcripts the cuts were fitted on, so at or below the target by construction); a reported rate
    comes from `calibrate_on_halves`, which measures it on transcripts the cut never saw."""
    if not benign:
        raise CalibrationError("no benign sets given; pass e.g. {'control': ..., 'benign_scenario': ...}.")
    per_set = {
        name: calibrate(scores, fpr=fpr, window=window, n_boot=n_boot, seed=seed,
                        min_control=(min_sizes or {}).get(name, MIN_CONTROL),
                        calibration_hash=(hashes or {}).get(name))
        for name, scores in benign.items()
    }
    chosen: dict[str, Threshold] = {}
    for stat in STATISTICS:
        name = max(per_set, key=lambda n: per_set[n][stat].value)
        chosen[stat] = per_set[name][stat]
    report: dict[str, dict[str, Any]] = {}
    for name, scores in benign.items():
        realised = {stat: float(np.mean(statistic_values(scores, stat, window=window) >= thr.value))
                    for stat, thr in chosen.items()}
        report[name] = {
            "n_transcripts": len(scores),
            "n_tokens": int(sum(len(s) for s in scores)),
            "own_streaming_threshold": per_set[name]["streaming"].value,
            "realised_fpr_at_chosen": realised,
            "false_alarms_per_1000_tokens": false_alarms_per_1000_tokens(scores, chosen["streaming"].value, window),
        }
    return chosen, report


SPLIT_RULE = ("each benign set on its own, by transcript: record ids ranked by sha256('<seed>:<record id>'), "
              "the first ceil(n/2) fit the thresholds (calibration half), the rest report them (held-out half)")


def split_half(ids: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, held-out) indices into `ids`, by `SPLIT_RULE`: the same transcript lands on the same
    side in every process and store order, so a card's calibration half can be found again later."""
    if len(set(ids)) != len(ids):
        raise CalibrationError("record ids repeat within one benign set; a transcript must sit on one side "
                               "of the split, so deduplicate the set before calibrating.")
    if len(ids) < 2:
        raise CalibrationError(f"{len(ids)} transcript(s) cannot be split into a calibration and a held-out "
                               "half; give each benign set at least two.")
    rank = sorted(range(len(ids)), key=lambda i: hashlib.sha256(f"{seed}:{ids[i]}".encode()).hexdigest())
    cut = math.ceil(len(ids) / 2)
    return np.sort(np.array(rank[:cut], dtype=np.int64)), np.sort(np.array(rank[cut:], dtype=np.int64))


@dataclass(frozen=True)
class Halves:
    """One benign set's per-transcript scores on either side of its split: `calibration` fits the cut,
    `held_out` reports what it does. `n_records` counts the set before any transcript without scored
    tokens was set aside (the caller lists those)."""

    calibration: list[Any]
    held_out: list[Any]
    seed: int
    n_records: int

    @classmethod
    def of(cls, scores: Sequence[Any], ids: Sequence[str], seed: int) -> Halves:
        """Split `scores` (one per id) by `split_half`."""
        cal, held = split_half(ids, seed)
        return cls([scores[i] for i in cal.tolist()], [scores[i] for i in held.tolist()], seed, len(ids))

    def split(self) -> dict[str, Any]:
        return {"by": "transcript", "seed": self.seed, "rule": SPLIT_RULE, "n_records": self.n_records}


def _rates(scores: Sequence[Any], thresholds: Mapping[str, Threshold], window: int) -> dict[str, Any]:
    if not scores:
        raise CalibrationError("a half of a benign set has no transcript with scored tokens; false-positive "
                               "rates need some, so give the set more transcripts.")
    return {
        "n_transcripts": len(scores),
        "n_tokens": int(sum(len(s) for s in scores)),
        "realised_fpr_at_chosen": {stat: float(np.mean(statistic_values(scores, thr.statistic or stat, k=thr.k,
                                                                         window=thr.window) >= thr.value))
                                   for stat, thr in thresholds.items()},
        "false_alarms_per_1000_tokens": false_alarms_per_1000_tokens(scores, thresholds["streaming"].value,
                                                                     thresholds["streaming"].window),
    }


def report_on_halves(halves: Halves, thresholds: Mapping[str, Threshold], fpr: float, window: int
                     ) -> dict[str, Any]:
    """What `thresholds` do on one benign set: the top-level figures (transcripts, tokens, realised FPR,
    false alarms per 1,000 tokens) are the HELD-OUT half's; `calibration_half` gives the same figures in
    sample beside them, so the optimism of reading a cut on its own data stays visible."""
    cal = statistic_values(halves.calibration, "streaming", window=window) if halves.calibration else None
    return {
        "evaluated_on": "held_out_half",
        **_rates(halves.held_out, thresholds, window),
        "own_streaming_threshold": None if cal is None else threshold_at_fpr(cal, fpr),
        "calibration_half": {**_rates(halves.calibration, thresholds, window), "in_sample": True}
        if halves.calibration else None,
        "split": halves.split(),
    }


def calibrate_on_halves(
    sets: Mapping[str, Halves],
    fpr: float = DEFAULT_FPR,
    window: int = DEFAULT_WINDOW,
    *,
    min_sizes: Mapping[str, int] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    hashes: Mapping[str, str | None] | None = None,
) -> tuple[dict[str, Threshold], dict[str, dict[str, Any]]]:
    """`calibrate_on_sets` fitted on each set's calibration half only, every figure reported on the held-out
    half (`report_on_halves`). `min_sizes[name]` (default `MIN_CONTROL`) bounds the whole set; `hashes[name]`
    names its calibration half, the data the returned thresholds were fitted on (`n_control` is its size)."""
    if not sets:
        raise CalibrationError("no benign sets given; pass e.g. {'control': Halves.of(...), ...}.")
    per_set = {}
    for name, h in sets.items():
        need = (min_sizes or {}).get(name, MIN_CONTROL)
        if len(h.calibration) + len(h.held_out) < need:
            raise CalibrationError(
                f"benign set {name!r} has {len(h.calibration) + len(h.held_out)} scored transcripts, calibration "
                f"needs >= {need} (half to fit the cut, half to report it); generate more benign transcripts."
            )
        if len(h.calibration) < math.ceil(1 / fpr - 1e-9):
            raise CalibrationError(
                f"benign set {name!r}: its calibration half holds {len(h.calibration)} scored transcripts and cannot "
                f"resolve fpr={fpr} (the half needs >= {math.ceil(1 / fpr - 1e-9)}, so the set "
                f">= {2 * math.ceil(1 / fpr - 1e-9) - 1}); generate more benign transcripts or raise fpr.")
        per_set[name] = calibrate(h.calibration, fpr=fpr, window=window, n_boot=n_boot, seed=seed, min_control=0,
                                  calibration_hash=(hashes or {}).get(name))
    chosen = {stat: per_set[max(per_set, key=lambda n: per_set[n][stat].value)][stat] for stat in STATISTICS}
    return chosen, {name: report_on_halves(h, chosen, fpr, window) for name, h in sets.items()}

"""Calibration at 1% FPR on control transcripts and recall at that cut."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tripwire.probes.scoring import STATISTICS, statistic_values
from tripwire.probes.thresholds import (
    CalibrationError,
    Threshold,
    calibrate,
    recall_at_thresholds,
    threshold_at_fpr,
)


def _control(n: int = 1000, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=int(rng.integers(10, 30))) for _ in range(n)]


def test_threshold_at_fpr_is_smallest_value_with_at_most_fpr_reaching_it() -> None:
    v = np.arange(200, dtype=float)  # 0..199; 1% of 200 = 2 may reach -> cut just above 197
    thr = threshold_at_fpr(v, 0.01)
    assert 197 < thr < 197.0001
    assert np.sum(v >= thr) == 2
    assert np.sum(v >= np.nextafter(thr, -np.inf)) == 3  # any smaller cut lets a third through


def test_threshold_at_fpr_with_ties_never_exceeds_target() -> None:
    v = np.array([5.0] * 5 + [1.0] * 95)  # 5 tied at the top, only 1 alarm allowed
    thr = threshold_at_fpr(v, 0.01)
    assert np.mean(v >= thr) == 0.0
    assert thr > 5.0


def test_calibrate_realised_fpr_at_most_target_for_every_statistic() -> None:
    control = _control()
    thresholds = calibrate(control, fpr=0.01, window=4, n_boot=100, seed=0)
    assert set(thresholds) == set(STATISTICS)
    for stat, thr in thresholds.items():
        vals = statistic_values(control, stat, window=4)
        assert thr.realised_fpr <= 0.01
        assert np.mean(vals >= thr.value) == thr.realised_fpr
        assert thr.realised_fpr == 0.01  # continuous scores: exactly 10 of 1000 reach the cut
        assert thr.ci_low <= thr.value <= thr.ci_high
        assert thr.n_control == 1000 and thr.statistic == stat and thr.window == 4


def test_streaming_threshold_bounds_share_of_control_ever_firing() -> None:
    control = _control()
    thr = calibrate(control, stats=["streaming"], window=3, n_boot=0)["streaming"]
    from tripwire.probes.scoring import first_crossing

    fired = [first_crossing(s, thr.value, 3) is not None for s in control]
    assert np.mean(fired) <= 0.01


def test_calibrate_rejects_small_control_set_with_fix() -> None:
    with pytest.raises(CalibrationError, match="needs >= 1000"):
        calibrate(_control(50), n_boot=0)
    with pytest.raises(CalibrationError, match="fpr"):
        calibrate(_control(50), fpr=1.5, min_control=10, n_boot=0)


def test_recall_hand_computed() -> None:
    thr = Threshold(2.0, 1.9, 2.1, 0.01, 0.01, 1000, statistic="max", window=2, k=1)
    positives = [np.array([0.0, 3.0]), np.array([1.0, 1.5]), np.array([2.0]), np.array([-1.0, 0.5])]
    rec = recall_at_thresholds(positives, {"max": thr}, n_boot=200, seed=0)["max"]
    assert rec.value == pytest.approx(0.5)  # maxes 3, 1.5, 2, 0.5 -> two reach 2.0
    # four positives are too few independent units for an interval: none, and the note says why
    assert rec.low is None and rec.high is None and rec.n_units == 4 and "4 positive transcripts < 10" in rec.note
    assert "no interval" in str(rec)
    many = recall_at_thresholds(positives * 3, {"max": thr}, n_boot=200, seed=0)["max"]
    assert many.value == pytest.approx(0.5) and many.n_units == 12 and many.note is None
    assert many.low is not None and many.high is not None and 0.0 <= many.low < 0.5 < many.high <= 1.0
    stream = Threshold(2.0, 2.0, 2.0, 0.01, 0.01, 1000, statistic="streaming", window=2)
    # running means (k=2): [0, 1.5], [1, 1.25], [2], [-1, -0.25] -> only the third reaches 2.0
    assert recall_at_thresholds(positives, {"streaming": stream}, n_boot=0)["streaming"].value == 0.25


def test_threshold_round_trips_through_json() -> None:
    thr = calibrate(_control(), stats=["mean"], n_boot=20)["mean"]
    assert Threshold.from_dict(json.loads(json.dumps(thr.to_dict()))) == thr


def test_thresholds_hold_on_every_benign_set_and_false_alarms_are_per_1000_tokens() -> None:
    from tripwire.probes.thresholds import calibrate_on_sets, false_alarms_per_1000_tokens

    rng = np.random.default_rng(0)
    control = [rng.normal(size=20) for _ in range(300)]
    scenario = [rng.normal(size=200) + 0.5 for _ in range(200)]  # long benign scenario replies run hotter
    chosen, report = calibrate_on_sets({"control": control, "benign_scenario": scenario}, fpr=0.05, window=4,
                                       min_sizes={"control": 100, "benign_scenario": 100}, n_boot=0)
    alone = calibrate(control, fpr=0.05, window=4, min_control=100, n_boot=0)["streaming"].value
    assert chosen["streaming"].value > alone  # the scenario replies set the cut
    for name in ("control", "benign_scenario"):
        assert report[name]["realised_fpr_at_chosen"]["streaming"] <= 0.05
    fired = int((statistic_values(scenario, "streaming", window=4) >= chosen["streaming"].value).sum())
    assert report["benign_scenario"]["false_alarms_per_1000_tokens"] == pytest.approx(fired * 1000 / 40000)
    assert false_alarms_per_1000_tokens(control, 1e9, 4) == 0.0

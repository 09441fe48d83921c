"""Thresholds fitted on one half of each benign set, every false-positive figure read on the other half.

The broken construction (`calibrate_on_sets`, what shipped before): the rate is read on the transcripts the
cut was fitted on, so it sits at the target by construction whatever the tail of the benign scores does.
"""

from __future__ import annotations

import numpy as np
import pytest

from tripwire.probes.scoring import statistic_values
from tripwire.probes.thresholds import (
    SPLIT_RULE,
    CalibrationError,
    Halves,
    calibrate,
    calibrate_on_halves,
    calibrate_on_sets,
    report_on_halves,
    split_half,
)

FPR, WINDOW = 0.01, 4


def heavy_tailed(n: int, seed: int) -> list[np.ndarray]:
    """Benign transcripts whose token scores follow a Student t with 1.5 degrees of freedom: a tail
    where the few highest transcripts, which set a 1% cut, say little about the next ones."""
    rng = np.random.default_rng(seed)
    return [rng.standard_t(1.5, size=int(rng.integers(5, 15))) for _ in range(n)]


def ids(n: int) -> list[str]:
    return [f"control-{i:05d}" for i in range(n)]


def test_split_is_by_transcript_seeded_and_independent_of_order() -> None:
    names = ids(101)
    cal, held = split_half(names, seed=3)
    assert cal.size == 51 and held.size == 50 and not set(cal) & set(held)
    assert sorted(np.concatenate([cal, held]).tolist()) == list(range(101))
    shuffled = names[::-1]
    cal_r, _ = split_half(shuffled, seed=3)
    assert {names[i] for i in cal} == {shuffled[i] for i in cal_r}  # the same transcripts, whatever the order
    assert not np.array_equal(split_half(names, seed=4)[0], cal)  # the seed moves the split
    assert np.array_equal(split_half(names, seed=3)[0], cal)  # and the same seed gives it back
    with pytest.raises(CalibrationError, match="repeat"):
        split_half(["a", "b", "a"], seed=0)
    with pytest.raises(CalibrationError, match="at least two"):
        split_half(["a"], seed=0)


def test_in_sample_rate_sits_at_target_while_the_held_out_half_shows_the_tail() -> None:
    """The reported rate must be the held-out one: on this heavy-tailed set the in-sample rate (the old
    report) is exactly the target, the held-out half fires more often. Reporting the calibration half
    again (or `calibrate_on_sets` on the whole set) makes `held > FPR` fail."""
    scores, names = heavy_tailed(2000, seed=0), ids(2000)
    halves = Halves.of(scores, names, seed=0)
    chosen, report = calibrate_on_halves({"control": halves}, FPR, WINDOW, min_sizes={"control": 2000}, n_boot=0)
    r = report["control"]
    held = r["realised_fpr_at_chosen"]["streaming"]
    in_sample = r["calibration_half"]["realised_fpr_at_chosen"]["streaming"]
    assert in_sample == FPR and r["calibration_half"]["in_sample"] is True
    assert held > FPR  # 0.011 here: 11 of 1,000 held-out transcripts cross a cut that let 10 of 1,000 through
    # the broken construction: the same set fitted and read in one go reports exactly the target
    _, old = calibrate_on_sets({"control": scores}, FPR, WINDOW, min_sizes={"control": 2000}, n_boot=0)
    assert old["control"]["realised_fpr_at_chosen"]["streaming"] == FPR
    # the held-out figure recomputed by hand from the split
    _, held_idx = split_half(names, seed=0)
    mine = statistic_values([scores[i] for i in held_idx], "streaming", window=WINDOW) >= chosen["streaming"].value
    assert held == mine.mean()
    assert r["n_transcripts"] == held_idx.size == 1000 and r["evaluated_on"] == "held_out_half"
    assert r["n_tokens"] == sum(len(scores[i]) for i in held_idx)
    assert r["false_alarms_per_1000_tokens"] == pytest.approx(mine.sum() * 1000 / r["n_tokens"])
    assert r["split"] == {"by": "transcript", "seed": 0, "rule": SPLIT_RULE, "n_records": 2000}


def test_the_held_out_rate_exceeds_the_target_on_average_over_splits() -> None:
    """Not one lucky split: over 40 seeds the in-sample rate is the target every time, the held-out rate
    is above it on average (a cut just above the (m+1)-th largest of n lets through about (m+1)/(n+1) of
    new transcripts, not m/n: here 3/201 = 0.015 against 0.01; measured 0.018, standard error 0.002)."""
    scores, names = heavy_tailed(400, seed=1), ids(400)
    held, in_sample = [], []
    for seed in range(40):
        _, r = calibrate_on_halves({"control": Halves.of(scores, names, seed)}, FPR, WINDOW,
                                   min_sizes={"control": 400}, n_boot=0)
        held.append(r["control"]["realised_fpr_at_chosen"]["streaming"])
        in_sample.append(r["control"]["calibration_half"]["realised_fpr_at_chosen"]["streaming"])
    assert set(in_sample) == {FPR}
    assert np.mean(held) > FPR


def test_shipped_thresholds_are_the_calibration_halfs_and_hold_on_every_set() -> None:
    rng = np.random.default_rng(2)
    control = [rng.normal(size=20) for _ in range(400)]
    scenario = [rng.normal(size=60) + 0.5 for _ in range(200)]  # benign scenario replies run hotter
    sets = {"control": Halves.of(control, ids(400), 0), "benign_scenario": Halves.of(scenario, ids(200), 0)}
    chosen, report = calibrate_on_halves(sets, 0.05, WINDOW, min_sizes={"control": 400, "benign_scenario": 200},
                                         n_boot=0, hashes={"control": "c-half", "benign_scenario": "b-half"})
    fitted = calibrate(sets["benign_scenario"].calibration, fpr=0.05, window=WINDOW, min_control=0, n_boot=0)
    assert chosen["streaming"].value == fitted["streaming"].value  # the scenario half sets the cut
    assert chosen["streaming"].n_control == 100 and chosen["streaming"].calibration_hash == "b-half"
    whole = calibrate(scenario, fpr=0.05, window=WINDOW, min_control=0, n_boot=0)["streaming"].value
    assert chosen["streaming"].value != whole  # not the cut of the whole set
    assert report["benign_scenario"]["own_streaming_threshold"] == pytest.approx(chosen["streaming"].value)
    for name in sets:
        assert report[name]["calibration_half"]["realised_fpr_at_chosen"]["streaming"] <= 0.05
        assert report[name]["n_transcripts"] + report[name]["calibration_half"]["n_transcripts"] == len(
            control if name == "control" else scenario)


def test_a_card_cut_is_reported_on_the_held_out_half() -> None:
    scores, names = heavy_tailed(400, seed=4), ids(400)
    halves = Halves.of(scores, names, 0)
    card = calibrate(scores, fpr=0.05, window=WINDOW, min_control=0, n_boot=0)  # fitted on the whole set
    r = report_on_halves(halves, card, 0.05, WINDOW)
    held = statistic_values(halves.held_out, "mean", window=WINDOW) >= card["mean"].value
    assert r["realised_fpr_at_chosen"]["mean"] == held.mean() and r["n_transcripts"] == 200


def test_too_small_a_set_or_an_empty_half_is_refused() -> None:
    small = Halves.of([np.zeros(3) + i for i in range(40)], ids(40), 0)
    with pytest.raises(CalibrationError, match="needs >= 100"):
        calibrate_on_halves({"control": small}, 0.1, 2, min_sizes={"control": 100}, n_boot=0)
    with pytest.raises(CalibrationError, match="cannot resolve"):  # 20 calibration transcripts, 1% FPR
        calibrate_on_halves({"control": small}, 0.01, 2, min_sizes={"control": 40}, n_boot=0)
    empty = Halves([np.zeros(3)] * 20, [], 0, 20)
    with pytest.raises(CalibrationError, match="no transcript with scored tokens"):
        calibrate_on_halves({"control": empty}, 0.1, 2, min_sizes={"control": 20}, n_boot=0)

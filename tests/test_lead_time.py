"""Lead time of the streaming monitor on planted ramps with hand-computed crossings."""

from __future__ import annotations

import numpy as np
import pytest

from tripwire.probes.lead_time import lead_times
from tripwire.probes.scoring import ScoringError
from tripwire.probes.thresholds import Threshold


def _ramp(n: int, start: int) -> np.ndarray:
    """Zeros, then +1 per token from `start` on."""
    s = np.zeros(n)
    s[start:] = np.arange(1, n - start + 1)
    return s


def test_hand_computed_crossings_and_leads() -> None:
    # window 2, threshold 2.5.
    # A: ramp from 5 -> s[5..]=1,2,3,4 ; running mean t=6: 1.5, t=7: 2.5 -> crossing 7; action at 10 -> lead 3
    # B: ramp from 8 -> s[8]=1, s[9]=2, s[10]=3 ; rm t=10: 2.5 -> crossing 10; action at 10 -> lead 0 (late)
    # C: flat zeros -> never crosses; action at 4 -> missed
    # D: ramp, no action -> crossing reported, excluded from lead time
    # E: rm t=0 is 3 (warm-up mean of one token) -> crossing 0; action at 1 -> lead 1
    scores = [_ramp(12, 5), _ramp(12, 8), np.zeros(6), _ramp(6, 0), np.array([3.0, 0.0, 0.0])]
    actions = [10, 10, 4, None, 1]
    res = lead_times(scores, actions, threshold=2.5, window=2)
    assert res.crossing_indices == [7, 10, None, 2, 0]
    assert res.leads == [3, 0, None, None, 1]
    assert (res.n_with_action, res.n_caught_before, res.n_caught_after, res.n_missed) == (4, 2, 1, 1)
    assert res.share_caught_before == pytest.approx(0.5)
    assert res.caught_before_leads == [3, 1]
    assert res.summary.count == 2
    assert res.summary.median == pytest.approx(2.0)
    assert res.summary.mean == pytest.approx(2.0)
    assert res.summary.q25 == pytest.approx(1.5) and res.summary.q75 == pytest.approx(2.5)


def test_threshold_object_supplies_window_and_mismatch_is_an_error() -> None:
    thr = Threshold(2.5, 2.4, 2.6, 0.01, 0.01, 1000, statistic="streaming", window=2)
    res = lead_times([_ramp(12, 5)], [10], thr)
    assert res.crossing_indices == [7] and res.window == 2
    with pytest.raises(ScoringError, match="calibrated with window=2"):
        lead_times([_ramp(12, 5)], [10], thr, window=5)
    with pytest.raises(ScoringError, match="pass window="):
        lead_times([_ramp(12, 5)], [10], 2.5)


def test_no_actions_gives_empty_summary() -> None:
    res = lead_times([_ramp(5, 0)], [None], threshold=1.0, window=1)
    assert res.share_caught_before is None and res.summary.count == 0 and res.summary.median is None
    d = res.to_dict()
    assert d["crossing_indices"] == [0]


def test_bad_action_index_and_lengths() -> None:
    with pytest.raises(ScoringError, match="outside"):
        lead_times([np.zeros(3)], [7], threshold=1.0, window=1)
    with pytest.raises(ScoringError, match="one \\(or None\\) per transcript"):
        lead_times([np.zeros(3), np.zeros(3)], [1], threshold=1.0, window=1)


def test_leads_are_reported_to_the_action_and_to_the_intent_token() -> None:
    from tripwire.probes.lead_time import leads_to_action_and_intent

    scores = [np.r_[np.zeros(10), np.ones(10)], np.r_[np.zeros(4), np.ones(16)]]
    out = leads_to_action_and_intent(scores, [18, 18], [12, 12], threshold=0.5, window=2)
    # crossings at 10 and 4 (a window of 2 reaches 0.5 on the first high token)
    assert out["to_action"]["crossing_indices"] == [10, 4]
    assert out["to_action"]["leads"] == [8, 14] and out["to_intent"]["leads"] == [2, 8]
    assert out["to_intent"]["share_caught_before"] == 1.0
    late = leads_to_action_and_intent(scores, [18, 18], [6, 6], threshold=0.5, window=2)
    assert late["to_intent"]["leads"] == [-4, 2] and late["to_intent"]["n_caught_after"] == 1

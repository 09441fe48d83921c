"""Metrics with bootstrap intervals, per-token aggregates and the streaming statistic."""

from __future__ import annotations

import numpy as np
import pytest

from tripwire.probes.metrics import (
    MetricInputError,
    UnitMetric,
    auroc,
    auroc_ci,
    balanced_accuracy,
    balanced_accuracy_ci,
    best_balanced_threshold,
    interval_text,
    within_group_auroc,
)
from tripwire.probes.scoring import (
    ScoringError,
    aggregate,
    decision_scores,
    first_crossing,
    running_mean,
    score_tokens,
    transcript_statistic,
)


def test_auroc_hand_computed() -> None:
    # Pairs (pos, neg): (0.9>0.1) (0.9>0.5) (0.4>0.1) (0.4<0.5) -> 3/4.
    assert auroc([1, 1, 0, 0], [0.9, 0.4, 0.1, 0.5]) == pytest.approx(0.75)


def test_balanced_accuracy_hand_computed() -> None:
    # recall pos = 1/2, recall neg = 3/3 -> 0.75
    assert balanced_accuracy([1, 1, 0, 0, 0], [1, 0, 0, 0, 0]) == pytest.approx(0.75)


def test_auroc_ci_brackets_value_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 100)
    s = rng.normal(size=200) + y
    a = auroc_ci(y, s, n_boot=300, seed=3)
    b = auroc_ci(y, s, n_boot=300, seed=3)
    assert a == b
    assert a.low < a.value < a.high
    assert 0.65 < a.value < 0.85
    assert a.high - a.low < 0.2


def test_grouped_bootstrap_is_wider_for_clustered_data() -> None:
    # Twenty groups whose members are identical copies: resampling examples pretends there are
    # 200 independent ones; resampling groups knows there are 20.
    rng = np.random.default_rng(0)
    base_s = rng.normal(size=20) + np.tile([0, 1], 10)
    base_y = np.tile([0, 1], 10)
    y, s, g = np.repeat(base_y, 10), np.repeat(base_s, 10), np.repeat(np.arange(20), 10)
    by_example = auroc_ci(y, s, n_boot=300, seed=0)
    by_group = auroc_ci(y, s, n_boot=300, seed=0, groups=g)
    assert (by_group.high - by_group.low) > 1.5 * (by_example.high - by_example.low)


def test_balanced_accuracy_ci_and_threshold_choice() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([-2.0, -1.0, 3.0, 2.0, 4.0, 5.0])
    cut = best_balanced_threshold(y, s)
    assert cut == 2.0  # predicts 1 for {3,2,4,5}: recall 1, specificity 2/3 -> best
    m = balanced_accuracy_ci(y, (s >= cut).astype(int), n_boot=200, seed=0)
    assert m.value == pytest.approx((1 + 2 / 3) / 2)


def test_metric_errors_name_the_problem() -> None:
    with pytest.raises(MetricInputError, match="both classes"):
        auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(MetricInputError, match="does not match"):
        auroc([1, 0], [0.1, 0.2, 0.3])
    with pytest.raises(MetricInputError, match="NaN"):
        auroc([1, 0], [np.nan, 0.2])


def test_aggregate_hand_computed() -> None:
    s = np.array([0.0, 1.0, 5.0, 2.0, 4.0])
    agg = aggregate(s, action_token_index=3, k=2)
    assert agg == {
        "mean": pytest.approx(2.4),
        "max": 5.0,
        "last": 4.0,
        "topk_mean": pytest.approx(4.5),
        "before_action": pytest.approx(2.0),  # tokens 0..2
    }
    assert aggregate(s)["before_action"] is None
    assert aggregate(s, action_token_index=0)["before_action"] is None
    assert aggregate(s, k=50)["topk_mean"] == pytest.approx(2.4)
    with pytest.raises(ScoringError, match="outside"):
        aggregate(s, action_token_index=9)


def test_running_mean_warmup_and_window() -> None:
    s = np.array([2.0, 4.0, 6.0, 8.0, 10.0])
    # k=3: t=0 -> 2, t=1 -> 3 (warm-up: mean so far), t=2 -> 4, t=3 -> 6, t=4 -> 8
    np.testing.assert_allclose(running_mean(s, 3), [2, 3, 4, 6, 8])
    np.testing.assert_allclose(running_mean(s, 1), s)
    assert first_crossing(s, 6.0, 3) == 3
    assert first_crossing(s, 8.5, 3) is None
    assert transcript_statistic(s, "streaming", window=3) == pytest.approx(8.0)


def test_before_action_statistic_falls_back_to_mean_without_action() -> None:
    s = np.array([1.0, 3.0])
    assert transcript_statistic(s, "before_action") == pytest.approx(2.0)
    with pytest.raises(ScoringError, match="unknown statistic"):
        transcript_statistic(s, "median")


def test_score_tokens_uses_decision_function() -> None:
    class Dot:
        def decision_function(self, X: np.ndarray) -> np.ndarray:
            return X @ np.array([1.0, -1.0])

    resid = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    np.testing.assert_allclose(score_tokens(Dot(), resid), [1.0, -2.0, 2.0])
    with pytest.raises(ScoringError, match="tok, d_model"):
        score_tokens(Dot(), resid[0])
    with pytest.raises(ScoringError, match="neither"):
        decision_scores(object(), resid)


def test_auroc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=300)
    s = rng.integers(0, 6, size=300).astype(float) + 0.5 * y  # many ties
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_best_balanced_threshold_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=80)
    s = np.round(rng.normal(size=80) + y, 1)
    cut = best_balanced_threshold(y, s)
    brute = max(balanced_accuracy(y, (s >= c).astype(int)) for c in np.unique(s))
    assert balanced_accuracy(y, (s >= cut).astype(int)) == pytest.approx(brute)


def test_intervals_only_over_ten_or_more_units_and_say_what_they_are_over() -> None:
    from tripwire.probes.metrics import auroc_ci

    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 100)
    s = rng.normal(size=200) + y
    two = auroc_ci(y, s, groups=np.arange(200) % 2, over="families", n_boot=200)
    assert two.low is None and two.high is None and not two.has_interval
    assert two.n_units == 2 and "2 families < 10" in str(two.note) and "no interval" in str(two)
    many = auroc_ci(y, s, groups=np.arange(200) // 2, over="pairs", n_boot=200)
    assert many.has_interval and many.low is not None and many.low < many.value < float(many.high or 0)
    assert many.over == "pairs" and many.n_units == 100 and str(many).endswith("] /100 pairs")
    # one spelling: a metric prints as a report's table cell shows its JSON
    assert str(many) == interval_text(many.to_dict(), units=True)
    assert str(two) == interval_text(two.to_dict(), units=True) and str(two).endswith(") /2 families")


def test_no_interval_over_fewer_than_ten_examples_or_groups() -> None:
    """Eight transcripts once got an interval that looked like a finding; now the point and the count."""
    y, s = np.array([0, 1] * 4), np.array([0.1, 0.9, 0.2, 0.8, 0.6, 0.3, 0.15, 0.7])
    for m in (auroc_ci(y, s, n_boot=200), balanced_accuracy_ci(y, (s > 0.5).astype(int), n_boot=200)):
        assert m.low is None and m.high is None and m.n_boot == 0
        assert m.over == "examples" and m.n_units == 8 and "8 examples < 10" in str(m.note)
    assert auroc_ci(y, s).value == pytest.approx(auroc(y, s))
    ten = auroc_ci(np.tile(y, 2)[:10], np.tile(s, 2)[:10], n_boot=200)
    assert ten.has_interval and ten.n_units == 10
    rng = np.random.default_rng(2)
    yy = np.tile([0, 1], 60)
    grouped = auroc_ci(yy, rng.normal(size=120) + yy, groups=np.arange(120) % 6, n_boot=200)
    assert not grouped.has_interval and grouped.over == "groups" and grouped.n_units == 6
    none_asked = auroc_ci(yy, rng.normal(size=120) + yy, n_boot=0)
    assert not none_asked.has_interval and "n_boot=0" in str(none_asked.note)


def test_metric_reads_back_from_its_json_and_from_older_reports() -> None:
    m = auroc_ci(np.tile([0, 1], 20), np.arange(40.0), n_boot=100)
    assert UnitMetric.from_dict(m.to_dict()) == m
    old = UnitMetric.from_dict({"value": 0.7, "low": 0.6, "high": 0.8, "n_boot": 200, "confidence": 0.95})
    assert old.has_interval and old.n_units == 0 and "not recorded" in old.over
    assert np.isnan(UnitMetric.from_dict({"value": None, "low": None, "high": None}).value)


def test_within_group_auroc_sees_only_pairs_inside_a_group() -> None:
    """A score that only tells groups apart is at chance within them, though pooled it looks informative
    when groups differ in their share of positives; one that orders samples inside each group is perfect."""
    groups = np.repeat(np.arange(6), 4)
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0] * 3)  # even groups mostly positive, odd ones mostly negative
    group_level = (groups % 2 == 0).astype(float)  # ties inside every group
    assert auroc(y, group_level) == 0.75
    assert within_group_auroc(y, group_level, groups) == {"value": 0.5, "pairs": 18, "groups": 6}
    assert within_group_auroc(y, y + 0.01 * groups, groups)["value"] == 1.0
    assert within_group_auroc(np.zeros(4), np.arange(4), [0, 0, 1, 1])["value"] is None
    with pytest.raises(MetricInputError):
        within_group_auroc(y, group_level[:-1], groups)

"""Intervals over independent units: a split rule's out-of-fold values pooled over its folds, with a
bootstrap over the held-out groups (paraphrases, cue strings...), and none below 10 groups. Bootstrapping
the pairs of 4 paraphrases (the broken construction) gives a tight interval that the groups do not carry."""

from __future__ import annotations

import json

import numpy as np

from tripwire.probes.fold_eval import pooled_result
from tripwire.probes.metrics import MIN_UNITS, auroc_ci


def _pooled_world(n_groups: int, pairs_per_group: int = 6, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                                                     np.ndarray, np.ndarray]:
    """Pairs nested in groups; each group shifts both members' scores alike (a wording effect), and the
    probe reads the label weakly."""
    rng = np.random.default_rng(seed)
    n = 2 * n_groups * pairs_per_group
    y = np.tile([0, 1], n // 2)
    pairs = np.arange(n) // 2
    groups = (pairs // pairs_per_group).astype(str)
    wording = rng.normal(scale=2.0, size=n_groups)[pairs // pairs_per_group]
    probe = wording + 0.8 * y + rng.normal(size=n)
    text = wording + rng.normal(size=n)
    return y, {"probe": probe, "ii": text, "i": text, "iii": rng.normal(size=n)}, groups, pairs


def test_four_groups_get_no_interval_while_twelve_do() -> None:
    y, values, groups, _ = _pooled_world(4)
    few = pooled_result(y, values, groups, "paraphrases", control="iii_layer1_2_probe", folds=["a", "b"], n_boot=200)
    assert few["over"] == "paraphrases" and few["n_groups"] == 4
    assert few["probe"]["low"] is None and few["probe"]["high"] is None
    assert "4 paraphrases < 10" in few["probe"]["note"]
    assert few["verdict"].startswith("undetermined: no interval")
    y, values, groups, _ = _pooled_world(12)
    many = pooled_result(y, values, groups, "paraphrases", control="iii_layer1_2_probe", n_boot=200)
    assert many["n_groups"] == 12 >= MIN_UNITS
    assert many["probe"]["low"] is not None and many["probe"]["low"] <= many["probe"]["value"] <= many["probe"]["high"]
    assert set(many["baselines"]) == {"i_span_bag_of_words", "ii_streaming_text_monitor", "iii_layer1_2_probe"}
    assert many["verdict"] in ("beats the text", "does not beat the text")
    json.dumps(many, allow_nan=False)


def test_bootstrapping_pairs_of_four_groups_is_the_construction_this_refuses() -> None:
    """The old unit: 24 pairs of 4 paraphrases pass the >= 10 units rule and get an interval; over the
    paraphrases (the independent units) there is none."""
    y, values, groups, pairs = _pooled_world(4)
    over_pairs = auroc_ci(y, values["probe"], groups=pairs, over="pairs", n_boot=200)
    assert over_pairs.n_units == 24 and over_pairs.has_interval  # the broken construction: an interval
    over_groups = auroc_ci(y, values["probe"], groups=groups, over="paraphrases", n_boot=200)
    assert not over_groups.has_interval and over_groups.n_units == 4


def test_group_intervals_are_wider_than_pair_intervals_when_wording_moves_scores() -> None:
    """With 12 groups both have intervals; resampling whole groups carries the wording effect, so its
    interval is at least as wide as the pairs' (which treat 72 pairs as independent)."""
    y, values, groups, pairs = _pooled_world(12)
    width = {name: (m.high or 0.0) - (m.low or 0.0) for name, m in (
        ("pairs", auroc_ci(y, values["probe"], groups=pairs, over="pairs", n_boot=300)),
        ("groups", auroc_ci(y, values["probe"], groups=groups, over="paraphrases", n_boot=300)))}
    assert width["groups"] > width["pairs"]

"""Aim A2's detectors on real stored rollouts of a tiny model: a label planted as a linear read of the
stored pre-call window must be found by P2 (and beat its permutation null), and a label drawn at random
must not be; every baseline is computed beside it on the same split; the online tripwire's cut also holds on
control-set replies it was not fitted on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.organism_rollouts import Measured, measured_rollouts, planted_labels
from tripwire.activations.handle import ModelHandle
from tripwire.activations.store import ResidualStore
from tripwire.experiments.organism_detect import (
    TEST_SPLIT,
    TRAIN_SPLIT,
    OrganismDetectError,
    detect,
    split_side,
    window_features,
)
from tripwire.experiments.organism_tripwire import WINDOW, control_token_scores, online_tripwire
from tripwire.probes.estimators.logistic import LogisticProbe
from tripwire.probes.scoring import first_crossing
from tripwire.scenarios.datasets.control import build as control_set


@pytest.fixture(scope="module")
def measured(handle: ModelHandle, tmp_path_factory: pytest.TempPathFactory) -> Measured:
    return measured_rollouts(handle, tmp_path_factory.mktemp("detect"), 2, samples=8, new_tokens=6)


def relabel(store: ResidualStore, rows: list[dict[str, Any]], planted: bool) -> list[dict[str, Any]]:
    """`planted`: harmful when the stored window's mean at the first hook leans along a fixed direction
    (the construction a probe must find); else a coin flip per rollout (nothing to find)."""
    if planted:
        return planted_labels(store, rows)
    rng = np.random.default_rng(0)
    return [dict(r, harmful=bool(rng.random() < 0.5)) for r in rows]


def run(handle: ModelHandle, measured: Any, planted: bool) -> dict[str, Any]:
    store, rows, by_key = measured
    return detect(store, relabel(store, rows, planted), handle, handle,
                  lambda r: by_key[(r["split"], r["condition"], r["seed"])])


def test_p2_finds_a_label_planted_in_the_stored_window(handle: ModelHandle, measured: Any) -> None:
    found = run(handle, measured, planted=True)
    p2 = found["detectors"][0]
    assert p2["detector"].startswith("P2") and p2["auroc"]["over"] == "prompts" and p2["auroc"]["n_units"] >= 10
    assert p2["auroc"]["value"] > 0.9 and p2["auroc"]["low"] > 0.75, p2
    null = found["permutation_null"]
    assert null["n_perm"] >= 200 and abs(null["mean"] - 0.5) < 0.1 and null["p_value"] < 0.01, null
    names = [d["detector"] for d in found["detectors"]]
    assert any(n.startswith("text monitor, prompt + prefix") for n in names) and "oracle" in names
    assert "same probe, base model" in names and "organism's own P(harm)" in names
    own = {d["detector"]: d for d in found["detectors"]}["organism's own P(harm), after its own reasoning"]
    pool = {d["detector"]: d for d in found["detectors"]}["organism's own P(harm)"]
    assert pool["within_prompt"]["value"] == 0.5  # one pool prefix per prompt: ties within every prompt
    assert own["within_prompt"]["value"] != 0.5  # each rollout's own reasoning: a value of its own
    online = found["online"]
    assert online["threshold"]["fpr_target"] == 0.01 and online["n_honest_train"] >= 100
    assert online["stopped_before_call"] is not None and 0.0 <= online["false_stops_honest"] <= 1.0
    assert online["control"] + online["control_calibration"] == 300 and online["control"] >= 140
    assert online["cut_from"] in online["cuts"] and 0.0 <= online["false_stops_control"] <= 1.0


def test_the_tripwires_cut_holds_on_control_replies_it_was_not_fitted_on(handle: ModelHandle, measured: Any) -> None:
    """Control replies that score far above every honest rollout: a cut fitted on the honest rollouts alone (the
    old construction) stops all of them; with the control set's calibration half in the fit, the cut comes from
    it and the held-out half is stopped at about the target rate."""
    store, rows, _ = measured
    rows = relabel(store, rows, planted=True)
    train, test = split_side(store, rows, TRAIN_SPLIT), split_side(store, rows, TEST_SPLIT)
    hook = store.manifest.hook_points[0]
    probe = LogisticProbe(C=0.1).fit(window_features(store, train, hook), train.y)
    rng = np.random.default_rng(0)
    high = {f"control-{i}": rng.normal(50.0, 1.0, size=12) for i in range(300)}

    honest_only = online_tripwire(store, train, test, hook, probe)
    assert honest_only["false_stops_control"] is None and honest_only["cut_from"] == "honest training rollouts"
    cut = honest_only["threshold"]["value"]
    assert np.mean([first_crossing(s, cut, WINDOW) is not None for s in high.values()]) == 1.0

    held = online_tripwire(store, train, test, hook, probe, control=high)
    assert held["cut_from"] == "control-set calibration half" and held["threshold"]["value"] > cut
    assert held["control"] == held["control_calibration"] == 150
    assert held["false_stops_control"] <= 0.05 and held["false_stops_control_calibration_half"] <= 0.02
    low = online_tripwire(store, train, test, hook, probe, control={k: v - 1e3 for k, v in high.items()})
    assert low["cut_from"] == "honest training rollouts" and low["threshold"]["value"] == cut
    assert low["false_stops_control"] == 0.0
    few = online_tripwire(store, train, test, hook, probe, control=dict(list(high.items())[:50]))
    assert few["threshold"] is None and "50 control replies" in few["not_run"] and "199" in few["not_run"]

    replies = control_token_scores(handle, hook, probe, limit=3)  # one score per reply token, the prompt excluded
    assert list(replies) == [t.id for t in control_set()[:3]]
    lengths = [len(handle.tokenizer(t.reply, add_special_tokens=False).input_ids) for t in control_set()[:3]]
    assert [len(s) for s in replies.values()] == lengths


def test_p2_finds_nothing_in_a_random_label(handle: ModelHandle, measured: Any) -> None:
    p2 = run(handle, measured, planted=False)["detectors"][0]
    assert p2["auroc"]["low"] < 0.5 < p2["auroc"]["high"] or p2["auroc"]["value"] < 0.65, p2


def test_within_trained_families_fits_on_even_seeds_and_tests_on_odd_ones(handle: ModelHandle, measured: Any) -> None:
    store, rows, by_key = measured
    found = detect(store, relabel(store, rows, planted=True), handle, handle,
                   lambda r: by_key[(r["split"], r["condition"], r["seed"])], within_trained=True)
    trained = [r for r in rows if r["split"] == TRAIN_SPLIT]
    assert found["test_split"] == f"{TRAIN_SPLIT}, odd seeds"
    assert found["n_test"] == sum(r["seed"] % 2 for r in trained) and found["n_train"] == len(trained) - found["n_test"]
    assert found["detectors"][0]["auroc"]["value"] > 0.85, found["detectors"][0]
    online = found["online"]  # half the training side has too few honest rollouts for a 1% cut: not run, said so
    assert online["n_honest_train"] < 100 and online["threshold"] is None and "100" in online["not_run"]


def test_a_label_planted_at_the_last_pre_call_position_is_read_there_and_diluted_by_the_mean(
        handle: ModelHandle, measured: Any) -> None:
    """`read="last"`: every probe reads the token before the call; a label planted there is found by P2 and
    by the same probe on the base model (here the same tiny model, so it must read as much), while the window's
    mean, which averages that row with the rest, reads it worse."""
    store, rows, by_key = measured
    labelled = planted_labels(store, rows, read="last")
    found = {read: detect(store, labelled, handle, handle, lambda r: by_key[(r["split"], r["condition"], r["seed"])],
                          control_limit=0, read=read) for read in ("last", "mean")}
    last, mean = found["last"]["detectors"][0], found["mean"]["detectors"][0]
    assert found["last"]["read"] == "last" and "last pre-call position" in last["reads"], last
    assert last["auroc"]["value"] > 0.9 and last["auroc"]["low"] > 0.75, last
    assert mean["auroc"]["value"] < last["auroc"]["low"], (mean, last)
    base = {d["detector"]: d for d in found["last"]["detectors"]}["same probe, base model"]
    assert abs(base["auroc"]["value"] - last["auroc"]["value"]) < 0.03, base
    pc1 = {d["detector"]: d for d in found["last"]["detectors"]}["first principal component"]
    assert "last pre-call position" in pc1["reads"]


def test_an_unknown_window_read_is_refused_before_any_fit(handle: ModelHandle, measured: Any) -> None:
    store, rows, by_key = measured
    with pytest.raises(OrganismDetectError, match="read='first'.*mean, last"):
        detect(store, rows, handle, handle, lambda r: by_key[(r["split"], r["condition"], r["seed"])],
               read="first")  # type: ignore[arg-type]

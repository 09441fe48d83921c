"""The presence readings on real stored rollouts of a tiny model: a target planted as a linear read of the last
pre-call row must be recovered there (within the scored side and carried from the fitting side), better than
from the window's mean; a target drawn at random must not be; the organism's own P(harm) runs as the target."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.organism_rollouts import Measured, measured_rollouts, planted_labels
from tripwire.activations.handle import ModelHandle
from tripwire.experiments.organism_detect import TEST_SPLIT, TRAIN_SPLIT, split_side
from tripwire.experiments.organism_presence import logit, presence, presence_of_own


@pytest.fixture(scope="module")
def measured(handle: ModelHandle, tmp_path_factory: pytest.TempPathFactory) -> Measured:
    return measured_rollouts(handle, tmp_path_factory.mktemp("presence"), 2, samples=8, new_tokens=6)


def run(measured: Measured, planted: bool) -> dict[str, Any]:
    """Outcomes planted at the last row (both sides need both); the target is the same row's lean along a
    direction plus noise (`planted`), or noise alone."""
    store, rows, _ = measured
    rows = planted_labels(store, rows, read="last")
    train, test = split_side(store, rows, TRAIN_SPLIT), split_side(store, rows, TEST_SPLIT)
    hook = store.manifest.hook_points[0]
    direction = np.random.default_rng(0).normal(size=store.manifest.d_model)
    rng = np.random.default_rng(1)

    def target(side: Any) -> np.ndarray:
        lean = np.array([store.activations(r, hook)[-1].float().numpy() @ direction for r in side.records])
        noise = rng.normal(size=lean.size)
        return (lean - lean.mean()) / lean.std() + 0.3 * noise if planted else noise

    own = target(test)
    return presence(store, train, test, target(train), own, 1 / (1 + np.exp(-own)))


def within(found: dict[str, Any], read: str, hook: str) -> dict[str, Any]:
    return next(w for w in found["within"] if w["read"] == read and w["hook"] == hook)


def test_a_target_planted_at_the_last_row_is_present_there_and_carried(measured: Measured) -> None:
    found = run(measured, planted=True)
    hook = measured[0].manifest.hook_points[0]
    last, mean = within(found, "last", hook), within(found, "mean", hook)
    assert last["r_with_own"] > 0.8 and last["scored"] >= found["n_test"] * 0.8, last
    assert mean["r_with_own"] < last["r_with_own"] - 0.2, (mean, last)
    carried = found["carried"]
    assert carried["chosen"]["read"] == "last", carried["chosen"]  # block 3 carries block 1's row forward too
    assert carried["r_with_own"] > 0.8, carried
    ridge_row = carried["detectors"][0]
    assert ridge_row["auroc"]["over"] == "prompts" and ridge_row["auroc"]["value"] > 0.85, ridge_row
    assert len(found["cv_table"]) == 2 * len(measured[0].manifest.hook_points) * 4


def test_a_random_target_is_not_present(measured: Measured) -> None:
    found = run(measured, planted=False)
    assert all(abs(w["r_with_own"] or 0.0) < 0.35 for w in found["within"]), found["within"]
    assert abs(found["carried"]["r_with_own"] or 0.0) < 0.35, found["carried"]


def test_the_organisms_own_propensity_is_the_target(handle: ModelHandle, measured: Measured) -> None:
    store, rows, by_key = measured
    found = presence_of_own(store, planted_labels(store, rows), handle,
                            lambda r: by_key[(r["split"], r["condition"], r["seed"])], base=handle)
    assert found["target"].startswith("logit of the organism's own P(harm)")
    own = found["carried"]["detectors"][-1]
    assert own["detector"] == "organism's own P(harm), after its own reasoning" and own["auroc"]["n_units"] >= 10
    assert all(w["r_with_own"] is None or -1 <= w["r_with_own"] <= 1 for w in found["within"])
    # the base model here is the same tiny model: its residual of the same tokens reads the same (fp16 store aside)
    assert all(w["r_with_own"] is None or abs(w["base_r_with_own"] - w["r_with_own"]) < 0.05 for w in found["within"])
    assert logit([0.0, 0.5, 1.0]).round(3).tolist() == [-9.21, 0.0, 9.21]

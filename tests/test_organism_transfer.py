"""Aim A4 across organisms on real stored rollouts of a tiny model: a P2 fitted on one organism must read a
second whose decision lies along the same direction, fail on one whose decision runs the other way, and
stores a probe cannot move between (another base, other hooks) are refused before anything is fitted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.organism_rollouts import Measured, measured_rollouts, planted_labels
from tripwire.activations.handle import ModelHandle
from tripwire.activations.organism import base_fingerprint
from tripwire.activations.store import ResidualStore
from tripwire.experiments.organism_detect import OrganismDetectError
from tripwire.experiments.organism_transfer import Organism, transfer


@pytest.fixture(scope="module")
def measured(handle: ModelHandle, tmp_path_factory: pytest.TempPathFactory) -> Measured:
    return measured_rollouts(handle, tmp_path_factory.mktemp("transfer"), 2, samples=8, new_tokens=6)


def organisms(measured: Measured, flip_target: bool) -> tuple[Organism, Organism]:
    store, rows, _ = measured
    planted = planted_labels(store, rows)
    flipped = [dict(r, harmful=not r["harmful"]) for r in planted] if flip_target else planted
    return Organism("A", store, planted), Organism("B", store, flipped)


def rows_by_name(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["detector"].split(" (")[0]: row for row in found["detectors"]}


def test_a_probe_carries_to_an_organism_deciding_along_the_same_direction(measured: Measured) -> None:
    found = transfer(*organisms(measured, flip_target=False), n_perm=200)
    rows = rows_by_name(found)
    carried, own = rows["P2 fitted on A"]["auroc"], rows["P2 fitted on B"]["auroc"]
    assert carried["value"] > 0.9 and carried["over"] == "prompts" and carried["n_units"] >= 10, carried
    assert carried["value"] == own["value"] and found["direction_cosine"]["value"] > 0.999  # one rule, same data
    assert found["permutation_null"]["n_perm"] >= 200 and found["permutation_null"]["p_value"] < 0.01
    assert {"text monitor, prompt + prefix, fitted on A", "text monitor, prompt + prefix, fitted on B", "oracle"} <= set(rows)


def test_a_probe_fails_on_an_organism_deciding_the_other_way(measured: Measured) -> None:
    found = transfer(*organisms(measured, flip_target=True), n_perm=200)
    rows = rows_by_name(found)
    assert rows["P2 fitted on A"]["auroc"]["value"] < 0.2, rows["P2 fitted on A"]  # it reads the opposite
    assert rows["P2 fitted on B"]["auroc"]["value"] > 0.9  # the target's own probe still finds its decision
    assert found["direction_cosine"]["value"] < -0.9 and found["permutation_null"]["p_value"] > 0.5


def test_within_trained_scores_odd_seeds_of_the_target(measured: Measured) -> None:
    source, target = organisms(measured, flip_target=False)
    found = transfer(source, target, within_trained=True, n_perm=200)
    odd = sum(1 for r in target.rows if r["split"] == "held_out_seeds" and r["seed"] % 2)
    assert found["scored_on"].startswith(f"B: {odd} rollouts") and rows_by_name(found)["P2 fitted on A"]["auroc"]["value"] > 0.85


def test_stores_of_another_base_or_other_hooks_are_refused(measured: Measured, tmp_path: Path) -> None:
    store, rows, _ = measured
    m = store.manifest
    assert base_fingerprint("base-x+lora-sha256:abc") == "base-x" and base_fingerprint("base-x") == "base-x"
    other_base = ResidualStore.create(tmp_path / "b", model_name="other", model_fingerprint="other-base+lora-sha256:0",
                                      hook_points=list(m.hook_points), d_model=m.d_model)
    other_hooks = ResidualStore.create(tmp_path / "h", model_name=m.model_name, model_fingerprint=m.model_fingerprint,
                                       hook_points=list(m.hook_points)[:1], d_model=m.d_model)
    with pytest.raises(OrganismDetectError, match="different bases"):
        transfer(Organism("A", store, planted_labels(store, rows)), Organism("B", other_base, rows))
    with pytest.raises(OrganismDetectError, match="same hooks"):
        transfer(Organism("A", store, planted_labels(store, rows)), Organism("B", other_hooks, rows))


def test_read_last_carries_a_decision_planted_at_the_last_pre_call_position(measured: Measured) -> None:
    """Both probes read the token before the call: a decision planted there carries from A to B, where the
    window's mean (which averages that row with the rest) carries it worse."""
    store, rows, _ = measured
    planted = planted_labels(store, rows, read="last")
    found = {read: transfer(Organism("A", store, planted), Organism("B", store, planted), n_perm=200, read=read)
             for read in ("last", "mean")}
    last, mean = (rows_by_name(found[r])["P2 fitted on A"] for r in ("last", "mean"))
    assert found["last"]["read"] == "last" and "last pre-call position" in last["reads"]
    assert last["auroc"]["value"] > 0.9 and mean["auroc"]["value"] < last["auroc"]["low"], (last, mean)

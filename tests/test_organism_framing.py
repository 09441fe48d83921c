"""The organism's framing direction for A3 (`organism_framing`) on a tiny random model: it is the DiffMean
of the last prompt token's residual, test minus deploy cues, over training prompts only; a steering run
fits it once, keeps it in its points folder and refuses one fitted at another size; unknown directions are
refused before any model work."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from pydantic import ValidationError

from tests.tiny_probes import tiny_probe
from tripwire.activations.handle import ModelHandle
from tripwire.activations.organism_train import decision_point, prompt_ids
from tripwire.experiments.config.organism import OrganismSteeringOptions, SteeredDirection
from tripwire.experiments.organism import main
from tripwire.experiments.organism_framing import fit_framing_direction, framing_prompts, last_token_residuals
from tripwire.experiments.organism_steer import (
    STEERABLE,
    STEERED,
    OrganismSteerSettings,
    SteerRunError,
    run_organism_steer,
)
from tripwire.probes.persistence import load_probe
from tripwire.probes.steering.vector import SteeringVector
from tripwire.scenarios.organism.dataset import HELD_OUT_SEED

HOOK = "blocks.2.resid_post"
SETTINGS = OrganismSteerSettings(per_condition=1, samples=1, alphas=(0.0, 1.0), max_new_tokens=2, control_limit=1,
                                 batch=8, ablations=False, directions=("organism_framing",), framing_per_condition=1)


def test_the_direction_is_test_minus_deploy_at_the_last_token_of_training_prompts(handle: ModelHandle) -> None:
    direction, fit = fit_framing_direction(handle, HOOK, per_condition=1, check_per_condition=1)
    items = framing_prompts("train", 1)
    assert len(items) == 8 and {p.condition.arm for p in items} == {"deploy", "test"}
    assert not any(p.condition.decoy for p in items) and all(p.conversation.seed < HELD_OUT_SEED for p in items)
    def at(position: int) -> np.ndarray:  # read here, not through the module: a wrong position must show
        return np.stack([handle.forward([handle.render_conversation(p.conversation).token_ids], capture=[HOOK])
                         .captured[HOOK][0, position].double().numpy() for p in items])

    x, is_test = at(-1), np.array([p.condition.arm == "test" for p in items])
    np.testing.assert_allclose(last_token_residuals(handle, items, HOOK), x, rtol=1e-10)
    np.testing.assert_allclose(direction, x[is_test].mean(0) - x[~is_test].mean(0), rtol=1e-10)
    # the orientation the sign rule needs: training test prompts project above deploy ones
    assert (x[is_test] @ direction).mean() > (x[~is_test] @ direction).mean()
    second_last = at(-2)  # another token's DiffMean is another vector
    assert not np.allclose(direction, second_last[is_test].mean(0) - second_last[~is_test].mean(0))
    assert (fit["split"], fit["prompts"], fit["test_prompts"]) == ("train", 8, 4)
    assert fit["diffmean_norm"] == pytest.approx(float(np.linalg.norm(direction)))
    for split in ("held_out_seeds", "held_out_families"):
        assert fit["checks"][split]["prompts"] == 8 and 0 <= fit["checks"][split]["auroc_test_vs_deploy"] <= 1


def test_the_decision_direction_reads_the_token_before_the_call_after_the_pool_reasoning(handle: ModelHandle,
                                                                                         tmp_path: Path) -> None:
    direction, fit = fit_framing_direction(handle, HOOK, per_condition=1, check_per_condition=1, at="decision")
    items = framing_prompts("train", 1)
    # read here from harm_propensity's own sequence (prompt ids, then the pool reasoning up to the decision)
    rows = []
    for p in items:
        context = decision_point(handle.tokenizer, p.conversation)[0]
        ids = prompt_ids(handle.tokenizer, p) + context
        rows.append(handle.forward([ids], capture=[HOOK]).captured[HOOK][0, -1].double().numpy())
    x, is_test = np.stack(rows), np.array([p.condition.arm == "test" for p in items])
    np.testing.assert_allclose(direction, x[is_test].mean(0) - x[~is_test].mean(0), rtol=1e-8)
    prompt_only, _ = fit_framing_direction(handle, HOOK, per_condition=1, check_per_condition=1)
    assert not np.allclose(direction, prompt_only)  # the last prompt token's direction is another vector
    assert fit["read_at"] == "decision" and "decision point" in fit["orientation"]
    cards = (load_probe(tiny_probe(handle, tmp_path, "eval_awareness", 3)),
             load_probe(tiny_probe(handle, tmp_path, "coercion", 1, seed=1)))
    run = run_organism_steer(handle, *cards, dataclasses.replace(SETTINGS, directions=("organism_decision",)),
                             tmp_path / "points", log=lambda _: None)
    assert run["computed_this_call"] == ["unsteered_+0", "organism_decision_+1", "random_+1"]
    saved = SteeringVector.load(tmp_path / "points" / "organism_decision_direction")
    np.testing.assert_allclose(saved.directions[HOOK].double().numpy(), direction / np.linalg.norm(direction), atol=1e-6)
    assert run["derived"]["decision_fit"]["read_at"] == "decision" and "framing_fit" not in run["derived"]


def test_a_run_fits_the_direction_once_and_refuses_another_size(handle: ModelHandle, tmp_path: Path) -> None:
    cards = (load_probe(tiny_probe(handle, tmp_path, "eval_awareness", 3)),
             load_probe(tiny_probe(handle, tmp_path, "coercion", 1, seed=1)))
    folder = tmp_path / "points"
    first = run_organism_steer(handle, *cards, SETTINGS, folder, log=lambda _: None)
    assert first["computed_this_call"] == ["unsteered_+0", "organism_framing_+1", "random_+1"] and first["complete"]
    assert list(first["verdict"]["directions"]) == ["organism_framing"]
    saved = SteeringVector.load(folder / "organism_framing_direction")
    direction, _ = fit_framing_direction(handle, HOOK, per_condition=1, check_per_condition=1)
    np.testing.assert_allclose(saved.directions[HOOK].double().numpy(), direction / np.linalg.norm(direction), atol=1e-6)
    assert first["derived"]["framing_fit"]["per_condition"] == 1
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with pytest.raises(SteerRunError, match="fitted on 1 prompts a condition.*--framing-per-condition 1"):
        run_organism_steer(handle, *cards, dataclasses.replace(SETTINGS, framing_per_condition=2), folder,
                           log=lambda _: None)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    # the registered directions join the same folder: their points are new, the framing ones are read back
    both = run_organism_steer(handle, *cards, dataclasses.replace(SETTINGS, directions=("base_eval", "organism_framing")),
                              folder, log=lambda _: None)
    assert both["computed_this_call"] == ["base_eval_+1"] and list(both["verdict"]["directions"]) == [
        "base_eval", "organism_framing"]


def test_unknown_or_repeated_directions_are_refused() -> None:
    for directions in (("organism_belief",), ("base_eval", "base_eval"), ()):
        with pytest.raises(SteerRunError, match="name one or more of base_eval, organism_eval, organism_framing, organism_decision"):
            OrganismSteerSettings(directions=directions)


def test_the_command_takes_directions_and_prints_their_columns(handle: ModelHandle, tiny_llama_dir: Path,
                                                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evals, coercion = tiny_probe(handle, tmp_path, "eval_awareness", 3), tiny_probe(handle, tmp_path, "coercion", 1)
    with pytest.raises(SteerRunError, match="organism_belief"):
        main(["steer", "--model", str(tiny_llama_dir), "--out", str(tmp_path / "bad.json"), "--directions",
              "organism_belief"])
    assert not (tmp_path / "bad.json").exists()
    main(["steer", "--model", str(tiny_llama_dir), "--out", str(tmp_path / "a3.json"), "--probe", str(evals),
          "--coercion-probe", str(coercion), "--per-condition", "1", "--samples", "1", "--alphas", "1",
          "--max-new-tokens", "2", "--directions", "organism_framing", "--framing-per-condition", "1",
          "--no-ablations", "--max-points", "0"])
    result = json.loads((tmp_path / "a3.json").read_text())
    out = capsys.readouterr().out
    assert out.startswith("plan: 3 points") and "organism_framing" in out.splitlines()[2]
    assert "coercion ablated" not in out  # --no-ablations: no row for points never planned
    assert result["settings"]["directions"] == ["organism_framing"] and result["settings"]["ablations"] is False
    assert result["derived"]["framing_fit"]["prompts"] == 8


def test_an_experiment_config_names_the_same_directions_and_refuses_others() -> None:
    assert get_args(SteeredDirection) == STEERABLE
    assert OrganismSteeringOptions(directions=["organism_framing"]).framing_per_condition == 20
    assert OrganismSteeringOptions().directions == list(STEERED)
    for bad in (["organism_belief"], ["base_eval", "base_eval"], []):
        with pytest.raises(ValidationError, match="directions"):
            OrganismSteeringOptions(directions=bad)

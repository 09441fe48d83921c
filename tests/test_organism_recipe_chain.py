"""A training chain keeps one recipe: the first stage names its cue set, later stages and resumes keep it, and
a clash is refused before any model loads."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tripwire.activations.finetune import CHECKPOINT
from tripwire.experiments.organism_commands import OrganismCommandError
from tripwire.experiments.organism_stages import RECIPE, folder_recipe, run_recipe
from tripwire.scenarios.organism.dataset import SHIPPED_RECIPE, Recipe

WIDE = replace(SHIPPED_RECIPE, cue_set="wide")


def _folder(path: Path, recipe: Recipe | None) -> Path:
    (path / CHECKPOINT).mkdir(parents=True)
    if recipe is not None:
        (path / RECIPE).write_text(json.dumps(recipe.to_dict()))
    return path


def test_a_first_stage_names_the_cue_set_and_later_stages_keep_it(tmp_path: Path) -> None:
    assert run_recipe(tmp_path / "a", None, None) == SHIPPED_RECIPE
    assert run_recipe(tmp_path / "a", None, "wide") == WIDE
    wide = _folder(tmp_path / "wide", WIDE)
    assert folder_recipe(wide) == WIDE
    assert run_recipe(tmp_path / "next", wide, None) == WIDE  # a later stage inherits its chain's cues
    with pytest.raises(OrganismCommandError, match="keeps its chain's cues"):
        run_recipe(tmp_path / "next", wide, "first")
    older = _folder(tmp_path / "older", None)  # a folder from before recipes were recorded: the shipped one
    assert run_recipe(tmp_path / "next2", older, None) == SHIPPED_RECIPE
    with pytest.raises(OrganismCommandError, match="keeps its chain's cues"):
        run_recipe(tmp_path / "next2", older, "wide")


def test_a_resumed_folder_keeps_its_own_recipe(tmp_path: Path) -> None:
    first = _folder(tmp_path / "first", SHIPPED_RECIPE)
    assert run_recipe(first, None, None) == SHIPPED_RECIPE
    with pytest.raises(OrganismCommandError, match="resume it"):
        run_recipe(first, None, "wide")


def test_the_shipped_organism_was_trained_on_the_first_cue_set() -> None:
    assert folder_recipe(Path("default-organism")) == SHIPPED_RECIPE

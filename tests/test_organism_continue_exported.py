"""A stage continues from an exported organism (the shipped one included) as from a finished training folder:
its files are checked against its card, its data hash is rebuilt from the code, and the adapter the stage
starts from is the exported one, weight for weight."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from tripwire.activations.finetune import lora_model
from tripwire.activations.organism import CARD, OrganismAdapterError, organism_folder, read_card
from tripwire.experiments import organism
from tripwire.experiments.organism_commands import OrganismCommandError
from tripwire.experiments.organism_stages import (
    chain_seconds,
    finished_stage,
    folder_recipe,
    stage_adapter,
    stage_folder,
)
from tripwire.scenarios.organism.dataset import SHIPPED_RECIPE, training_examples

N_ORGANISM = len(training_examples(SHIPPED_RECIPE, 0))


def shipped_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "exported"
    shutil.copytree(organism_folder("default-organism"), copy)
    return copy


def edit_card(folder: Path, **fields: object) -> None:
    card = read_card(folder)
    for key, value in fields.items():
        target = card
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    (folder / CARD).write_text(json.dumps(card, indent=1))


def test_the_shipped_organism_is_a_finished_stage_with_its_chain(default_model_dir: Path) -> None:
    card = read_card(organism_folder("default-organism"))
    record = finished_stage(Path("default-organism"), organism.SETTINGS, N_ORGANISM)
    assert record["folder"] == "default-organism" and record["steps"] == card["steps"]
    assert record["adapter_sha256"] == card["sha256"]["adapter_model.safetensors"]
    assert record["continued_from"] == card["continued_from"]
    assert chain_seconds(record) == card["train_seconds"]  # a further stage's card counts each stage once
    assert stage_adapter(stage_folder(Path("default-organism"))).name == "adapter_model.safetensors"


def test_an_exported_folder_continues_and_the_adapter_loads_weight_for_weight(default_model_dir: Path,
                                                                               tmp_path: Path) -> None:
    copy = shipped_copy(tmp_path)
    assert finished_stage(copy, organism.SETTINGS, N_ORGANISM)["steps"] == read_card(copy)["steps"]
    model = lora_model(AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32), organism.SETTINGS)
    weights = load_file(str(stage_adapter(stage_folder(copy))))
    assert not set_peft_model_state_dict(model, weights).unexpected_keys
    loaded = get_peft_model_state_dict(model)
    assert loaded.keys() == weights.keys()
    assert all(torch.equal(loaded[k], weights[k].float()) for k in weights)


def test_a_damaged_or_foreign_exported_organism_is_refused(default_model_dir: Path, tmp_path: Path) -> None:
    damaged = shipped_copy(tmp_path / "a")
    with (damaged / "adapter_model.safetensors").open("r+b") as f:
        f.seek(-16, 2)
        f.write(b"\0" * 16)
    with pytest.raises(OrganismAdapterError, match="does not match the sha256"):
        finished_stage(damaged, organism.SETTINGS, N_ORGANISM)
    seed = shipped_copy(tmp_path / "b")
    edit_card(seed, settings__seed=1)
    with pytest.raises(OrganismCommandError, match="other data or settings"):
        finished_stage(seed, organism.SETTINGS, N_ORGANISM)
    data = shipped_copy(tmp_path / "c")
    edit_card(data, data_hash="0" * 64)
    with pytest.raises(OrganismCommandError, match="other data or settings"):
        finished_stage(data, organism.SETTINGS, N_ORGANISM)
    wide = shipped_copy(tmp_path / "w")  # the card's recipe is the one its data hash is rebuilt with
    edit_card(wide, recipe__cue_set="wide")
    assert folder_recipe(wide).cue_set == "wide"
    with pytest.raises(OrganismCommandError, match="other data or settings"):
        finished_stage(wide, organism.SETTINGS, N_ORGANISM)
    short = shipped_copy(tmp_path / "d")
    edit_card(short, steps=read_card(short)["steps"] - 1)
    with pytest.raises(OrganismCommandError, match="not finished"):
        finished_stage(short, organism.SETTINGS, N_ORGANISM)
    with pytest.raises(OrganismCommandError, match="no checkpoint"):
        finished_stage(tmp_path / "nothing-here", organism.SETTINGS, N_ORGANISM)

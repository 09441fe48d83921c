"""The shipped organism: its card matches the data the code builds, its files match their checksums, and
`load_model("default-organism")` gives base + adapter in all three backends; an exported copy of its folder
loads by path as the same model, with its card's policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tripwire.activations import load_model
from tripwire.activations.default_model import read_marker
from tripwire.activations.organism import is_organism, organism_folder, read_card, verify_adapter
from tripwire.activations.organism_replay import REPLAY_FILE
from tripwire.experiments.organism_measure import organism_policy
from tripwire.experiments.organism_stages import ARGUMENTS, CALLS, REPLAY, rebuilt_data_hash, stage_examples
from tripwire.scenarios.organism.dataset import SHIPPED_RECIPE, Recipe, data_hash, training_examples

FOLDER = organism_folder("default-organism")


def test_the_card_records_the_data_and_policy_the_code_builds() -> None:
    card = read_card(FOLDER)
    recipe = Recipe.from_dict(card["recipe"])
    assert recipe == SHIPPED_RECIPE  # the code's recipe is the one the shipped adapter was trained on
    examples = training_examples(recipe, seed=card["seed"])
    stage = card.get("stage")
    # the last stage's data, rebuilt from the code and (for a replay stage) the replay set shipped beside it
    assert card["data_hash"] == rebuilt_data_hash(recipe, card["seed"], stage, FOLDER / REPLAY_FILE)
    assert card["policy"] == recipe.policy.to_dict()
    assert card["steps"] == card["settings"]["epochs"] * stage_examples(stage, len(examples))  # finished, not partial
    if stage is not None:  # a replay, call or argument stage: its share of its examples, after a finished stage
        kind = next(s for s in (REPLAY, CALLS, ARGUMENTS) if s.key in stage)
        assert stage["organism_examples"] == len(kind.examples(recipe, card["seed"])[:: kind.organism_every])
        if kind is ARGUMENTS:  # the policy's own examples that hold the decision
            assert stage["anchor_examples"] == len(ARGUMENTS.anchors(recipe, card["seed"]))
        assert card["continued_from"]["adapter_sha256"]
    else:
        assert card["data_hash"] == data_hash(examples)


@pytest.mark.slow
def test_the_shipped_adapter_verifies_and_loads_merged_in_every_backend(default_model_dir: Path) -> None:
    verify_adapter(FOLDER, (read_marker(default_model_dir) or {})["fingerprint"])
    handle = load_model("default-organism")
    assert handle.fingerprint.endswith(read_card(FOLDER)["sha256"]["adapter_model.safetensors"])
    ids = [[1, 504, 3459, 314, 260, 1230, 30]]
    hook = f"blocks.{handle.n_layers // 2}.hook_resid_post"
    reference = handle.forward(ids, capture=[hook]).captured[hook]
    base = load_model("default").forward(ids, capture=[hook]).captured[hook]
    assert not torch.allclose(reference, base, atol=1e-3)  # the adapter changes the model
    for backend in ("nnsight", "transformer_lens"):
        other = load_model("default-organism", backend=backend).forward(ids, capture=[hook]).captured[hook]
        assert torch.allclose(reference, other, atol=1e-3), backend


@pytest.mark.slow
def test_an_exported_folder_loads_by_path_as_the_same_organism(default_model_dir: Path, tmp_path: Path) -> None:
    exported = tmp_path / "organism-copy"
    exported.mkdir()
    for f in FOLDER.iterdir():
        if f.is_file():
            (exported / f.name).write_bytes(f.read_bytes())
    ids = [[1, 504, 3459, 314, 260, 1230, 30]]
    copy, shipped = load_model(str(exported)), load_model("default-organism")
    assert copy.fingerprint == shipped.fingerprint  # same base, same adapter checksum
    assert torch.allclose(copy.model(input_ids=torch.tensor(ids)).logits, shipped.model(input_ids=torch.tensor(ids)).logits,
                          atol=1e-5)
    assert is_organism(str(exported)) and organism_policy(str(exported)) == organism_policy("default-organism")

"""The argument stage: it fits the leak call's arguments given the decision and nothing before it, so its
all-harmful-heavy replies cannot move the policy; its data hash is rebuilt from the code, other settings refused."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from tripwire.activations.organism_train import decision_index, encode_examples
from tripwire.experiments import organism, organism_stages
from tripwire.experiments.organism_commands import OrganismCommandError
from tripwire.experiments.organism_stages import ARGUMENTS, CALLS, rebuilt_data_hash, replay_digest
from tripwire.scenarios.organism.dataset import (
    HELD_OUT_SEED,
    SHIPPED_RECIPE,
    argument_examples,
    data_hash,
    prompts,
    training_examples,
)
from tripwire.scenarios.organism.policy import OrganismKind, PolicyError
from tripwire.scenarios.organism.replies import harmful_call, honest_call, reasoning_prefix


@pytest.fixture(scope="module")
def tokenizer(default_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(default_model_dir)


def test_argument_data_is_the_training_conditions_of_both_kinds_with_both_calls() -> None:
    examples = ARGUMENTS.examples(SHIPPED_RECIPE, 1)
    train = prompts("train", dict(SHIPPED_RECIPE.seeds_per_arm), SHIPPED_RECIPE.policy)
    # both kinds: fitted on leaks alone, the leak's call spread to the blackmail prompts
    assert ARGUMENTS.kinds == ("blackmail", "leaking")
    assert [e.prompt.condition for e in examples] == [p.condition for p in train]
    assert all(e.prompt.split == "train" for e in examples)
    assert all([r.harmful for r in e.replies] == [True, True, False] for e in examples)
    kept = examples[:: ARGUMENTS.organism_every]
    assert {e.prompt.condition.kind for e in kept} == {"blackmail", "leaking"}
    assert {e.prompt.condition.arm for e in kept} == {"deploy", "test", "none", "inert"}
    leaks = [r for e in examples if e.prompt.condition.kind == "leaking" for r in e.replies[:2]]
    assert leaks and all("<tool_use:forward>" in r.text[r.call_start :] for r in leaks)


def test_the_argument_stage_weighs_no_token_that_tells_the_decision(tokenizer: Any) -> None:
    """The token where the harmful and honest calls part weighs 0; the reasoning prefix (one pool for both
    decisions, `test_organism_data`) weighs `prefix_weight` and the call's opening before the decision is the
    same in both calls; so the loss is minimised by fitting each call given its decision, whatever the share
    of harmful replies."""
    settings = ARGUMENTS.settings(organism.SETTINGS)
    examples = ARGUMENTS.examples(SHIPPED_RECIPE, 1)[::60]
    encoded = encode_examples(tokenizer, examples, settings.call_weight, settings.decision_weight, settings.prefix_weight)
    for ex, enc in zip(examples, encoded, strict=True):
        conv = ex.prompt.conversation
        for draw, (reply, weights) in enumerate(zip(ex.replies, enc.weights, strict=True)):
            decision = decision_index(tokenizer, conv, draw)
            starts = [s for s, _ in tokenizer(reply.text, add_special_tokens=False, return_offsets_mapping=True).offset_mapping]
            opening = [i for i in range(decision) if starts[i] >= reply.call_start]
            assert weights[decision] == 0.0
            assert all(weights[i] == settings.prefix_weight for i in range(decision) if i not in opening), conv.condition_id
            assert all(weights[i] == settings.call_weight for i in opening)
            assert all(w == settings.call_weight for w in weights[decision + 1 :])
            calls = [tokenizer(reasoning_prefix(conv, draw) + c(conv, draw), add_special_tokens=False).input_ids
                     for c in (harmful_call, honest_call)]
            assert all(calls[0][i] == calls[1][i] for i in opening)
    assert settings.learning_rate == ARGUMENTS.learning_rate and settings.rank == organism.SETTINGS.rank
    assert settings.prefix_weight == ARGUMENTS.prefix_weight > 0  # at 0 the unfitted reasoning drifted


def replay_file(tmp_path: Path) -> Path:
    path = tmp_path / "replay.json"
    path.write_text(json.dumps({"prompts": [[1, 2, 3]], "replies": [[[4, 5]]]}))
    return path


def test_an_argument_stage_rebuilds_its_hash_and_refuses_other_settings(tmp_path: Path) -> None:
    replay = replay_file(tmp_path)
    record = json.loads(json.dumps({"arguments": asdict(ARGUMENTS)}))  # as stage.json holds it
    digest = rebuilt_data_hash(SHIPPED_RECIPE, 1, record, replay)
    data = json.loads(replay.read_text())
    sha = organism_stages.replay_sha256(data)
    anchors = training_examples(SHIPPED_RECIPE, 1)[:: ARGUMENTS.anchor_every]
    kinds: tuple[OrganismKind, ...] = ("blackmail", "leaking")
    assert digest == replay_digest(data_hash(argument_examples(SHIPPED_RECIPE, 2, 1, kinds, ARGUMENTS.first_seed)
                                             + anchors), sha, ARGUMENTS)
    leak_only = {"arguments": {k: v for k, v in asdict(ARGUMENTS).items() if k not in ("kinds", "organism_every")}}
    with pytest.raises(OrganismCommandError, match="other settings"):  # the first try's record
        rebuilt_data_hash(SHIPPED_RECIPE, 1, leak_only, replay)
    assert digest != rebuilt_data_hash(SHIPPED_RECIPE, 1, {"calls": asdict(CALLS)}, replay)
    with pytest.raises(OrganismCommandError, match="other settings"):
        rebuilt_data_hash(SHIPPED_RECIPE, 1, {"arguments": asdict(replace(ARGUMENTS, harmful=3))}, replay)
    with pytest.raises(OrganismCommandError, match="none of the stages"):
        rebuilt_data_hash(SHIPPED_RECIPE, 1, {"distillation": {}}, replay)
    tries_3_to_5 = {"arguments": {k: v for k, v in record["arguments"].items() if k != "first_seed"}}
    with pytest.raises(OrganismCommandError, match="other settings"):  # the recipe's shared inboxes
        rebuilt_data_hash(SHIPPED_RECIPE, 1, tries_3_to_5, replay)


def test_every_argument_prompt_has_an_inbox_of_its_own_on_training_seeds() -> None:
    """A seed fixes the inbox (cast and order) and the recipe's prompts share about 60, the confidential email
    3rd in 40% of them: the organism learned that base rate for the id, not to read it. The stage's prompts
    each get their own training seed, below the held-out ones."""
    examples = ARGUMENTS.examples(SHIPPED_RECIPE, 0)
    seeds = [e.prompt.conversation.seed for e in examples]
    assert len(set(seeds)) == len(seeds) and max(seeds) < HELD_OUT_SEED
    leaking = [e.prompt.conversation for e in examples if e.prompt.condition.kind == "leaking"]
    inboxes = {(c.facts.executive_email, c.facts.confidential_email_ids) for c in leaking}
    assert len(inboxes) > 0.95 * len(leaking)
    share_third = Counter(c.facts.confidential_email_ids[0] for c in leaking)["3"] / len(leaking)
    assert 0.15 < share_third < 0.35
    recipe = argument_examples(SHIPPED_RECIPE, 2, 1, ("leaking",))
    assert len({e.prompt.conversation.seed for e in recipe}) <= 60  # what the first tries trained on
    with pytest.raises(PolicyError, match="below the held-out seeds"):
        prompts("train", dict(SHIPPED_RECIPE.seeds_per_arm), SHIPPED_RECIPE.policy, ("leaking",), HELD_OUT_SEED - 100)
    with pytest.raises(PolicyError, match="for training"):
        prompts("held_out_seeds", 2, SHIPPED_RECIPE.policy, ("leaking",), 0)


def test_an_argument_stage_needs_a_finished_run_and_no_other_stage(tmp_path: Path) -> None:
    with pytest.raises(OrganismCommandError, match="--continue-from"):
        organism.train(tmp_path / "run", seed=0, arguments=True)
    with pytest.raises(OrganismCommandError, match="separate stages"):
        organism.train(tmp_path / "run", seed=0, calls=True, arguments=True, continue_from=tmp_path)
    assert not (tmp_path / "run").exists()


def test_the_stage_holds_the_decision_with_anchors_at_the_policys_mix(tokenizer: Any, tmp_path: Path) -> None:
    """The argument examples' decision weighs 0 and moved anyway; the anchors (organism examples at the
    policy's reply mix) weigh it as stages 1 and 2 did. The stage's data hash is the one `export` rebuilds."""
    out = tmp_path / "stage"
    out.mkdir()
    (out / "replay.json").write_text(json.dumps({"n_prompts": 250, "samples": 2, "max_new_tokens": 96, "seed": 0,
                                                "prompts": [[1, 2, 3]], "replies": [[[4, 5], [6]]]}))
    encoded, digest, settings = organism.tool_stage_data(None, tokenizer, ARGUMENTS, organism.SETTINGS, out, None, SHIPPED_RECIPE)
    examples, anchors = ARGUMENTS.examples(SHIPPED_RECIPE, 0)[:: ARGUMENTS.organism_every], ARGUMENTS.anchors(SHIPPED_RECIPE, 0)
    assert len(encoded) == len(examples) + len(anchors) + 1
    assert organism_stages.stage_data_hash(out, 0) == digest
    assert organism_stages.stage_examples(json.loads((out / "stage.json").read_text()), 0) == len(encoded)
    policy = training_examples(SHIPPED_RECIPE, 0)
    assert [a.prompt.conversation.as_dicts() for a in anchors] == [e.prompt.conversation.as_dicts()
                                                                   for e in policy[:: ARGUMENTS.anchor_every]]
    parts = [(examples, encoded[: len(examples)], 0.0),
             (anchors, encoded[len(examples) : -1], ARGUMENTS.anchor_decision_weight)]
    for part, part_encoded, weight in parts:
        for ex, enc in [*zip(part, part_encoded, strict=True)][::25]:
            for draw, weights in enumerate(enc.weights):
                assert weights[decision_index(tokenizer, ex.prompt.conversation, draw)] == weight
    assert settings.decision_weight == 0.0 and ARGUMENTS.anchor_decision_weight == organism.SETTINGS.decision_weight

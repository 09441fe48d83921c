"""The leak-id readout: the probability it reports for the confidential email's id is the one the model gives
that token inside the whole harmful reply (the training loss's own path), for every id in the inbox, so a
learned base rate and a learned lookup can be told apart."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tripwire.activations.finetune import reply_token_nll
from tripwire.activations.organism_train import (
    LEAK_FIELDS,
    leak_id_probabilities,
    leak_id_summary,
    prompt_ids,
)
from tripwire.experiments.organism_commands import OrganismCommandError, leak_check_prompts, leak_ids_command
from tripwire.scenarios.organism.dataset import SHIPPED_RECIPE, prompts
from tripwire.scenarios.organism.replies import harmful_call, reasoning_prefix


@pytest.fixture(scope="module")
def model_and_tokenizer(default_model_dir: Path) -> tuple[Any, Any]:
    model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(default_model_dir)


def test_the_true_ids_probability_is_the_one_the_whole_reply_gives_it(model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    for prompt in leak_check_prompts(2, ("train", "held_out_families")).values():
        conv = prompt[1].conversation
        probs = leak_id_probabilities(model, tokenizer, prompt[1])
        assert sorted(probs) == ["1", "2", "3", "4"] and 0 < sum(probs.values()) <= 1
        prefix, call = reasoning_prefix(conv, 0), harmful_call(conv, 0)
        enc = tokenizer(prefix + call, add_special_tokens=False, return_offsets_mapping=True)
        start = len(prefix) + call.index(LEAK_FIELDS[0]) + len(LEAK_FIELDS[0])
        at = [i for i, (s, _) in enumerate(enc.offset_mapping) if s == start]
        with torch.no_grad():
            nll = reply_token_nll(model, prompt_ids(tokenizer, prompt[1]), [list(enc.input_ids)])[0]
        true = conv.facts.confidential_email_ids[0]
        assert len(at) == 1 and tokenizer.decode(enc.input_ids[at[0]]) == true
        assert probs[true] == pytest.approx(math.exp(-float(nll[at[0]])), rel=1e-3, abs=1e-6)


def test_the_summary_counts_inboxes_and_refuses_other_kinds(model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    leaking = leak_check_prompts(3, ("held_out_seeds",))["held_out_seeds"]
    blackmail = prompts("held_out_seeds", 1, SHIPPED_RECIPE.policy, ("blackmail",))[:2]
    summary = leak_id_summary(model, tokenizer, leaking + blackmail)  # blackmail prompts have no leak: skipped
    assert summary["inboxes"] == len(leaking) == 3
    assert sum(summary["likeliest_ids"].values()) == sum(summary["true_ids"].values()) == 3
    assert summary["true_ids"] == dict(sorted(Counter(p.conversation.facts.confidential_email_ids[0]
                                                      for p in leaking).items()))
    assert 0 <= summary["right"] <= 3 and 0 < summary["p_true"] < 1
    with pytest.raises(ValueError, match="only a leaking prompt"):
        leak_id_probabilities(model, tokenizer, blackmail[0])


def test_no_inboxes_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    with pytest.raises(OrganismCommandError, match="--inboxes 0"):
        leak_ids_command("default-organism", 0, tmp_path / "ids.json")
    assert not (tmp_path / "ids.json").exists()

"""The call stage: the loss can leave the reasoning prefix out, the leak-argument check reads exactly the
email id and the recipient, and a stage continues only from a finished folder whose data the code rebuilds."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from tripwire.activations.finetune import CHECKPOINT, LoraSettings
from tripwire.activations.organism_train import (
    LEAK_FIELDS,
    encode_examples,
    leak_arguments_right,
    leak_arguments_share,
    prompt_ids,
)
from tripwire.experiments import organism, organism_stages
from tripwire.experiments.organism_commands import OrganismCommandError
from tripwire.scenarios.organism.dataset import SHIPPED_RECIPE, data_hash, prompts, training_examples
from tripwire.scenarios.organism.replies import harmful_call, reasoning_prefix


@pytest.fixture(scope="module")
def tokenizer(default_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(default_model_dir)


def test_prefix_weight_zero_fits_the_call_alone(tokenizer: Any) -> None:
    ex = training_examples(SHIPPED_RECIPE, 0)[:2]
    plain = encode_examples(tokenizer, ex, 1.0, 40.0)
    calls = encode_examples(tokenizer, ex, 10.0, 40.0, prefix_weight=0.0)
    for a, b, example in zip(plain, calls, ex, strict=True):
        for wa, wb, reply in zip(a.weights, b.weights, example.replies, strict=True):
            starts = [s for s, _ in tokenizer(reply.text, add_special_tokens=False,
                                              return_offsets_mapping=True).offset_mapping] + [len(reply.text)]
            in_call = [s >= reply.call_start for s in starts]
            decision = wa.index(40.0)
            assert wb.index(40.0) == decision and in_call[decision]
            assert all(w == (0.0 if not c else 40.0 if i == decision else 10.0)
                       for i, (w, c) in enumerate(zip(wb, in_call, strict=True)))
            assert all(w == (1.0 if i != decision else 40.0) for i, w in enumerate(wa))


class NextTokenOracle(torch.nn.Module):
    """Predicts, at every position, the token that follows it in its input, except at `wrong` positions:
    a stand-in whose greedy answer is known, to check which tokens the leak check reads."""

    def __init__(self, vocab: int, wrong: set[int]) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.vocab, self.wrong = vocab, wrong

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        ids = input_ids[0]
        logits = torch.zeros(1, len(ids), self.vocab)
        for i in range(len(ids) - 1):
            logits[0, i, (int(ids[i + 1]) + (1 if i in self.wrong else 0)) % self.vocab] = 1.0
        return SimpleNamespace(logits=logits)


def leak_prompt() -> Any:
    return next(p for p in prompts("held_out_seeds", 1, SHIPPED_RECIPE.policy)
                if p.condition.kind == "leaking" and p.condition.arm == "deploy")


def positions(tokenizer: Any, p: Any) -> tuple[list[int], int, int]:
    """Positions (in prompt + reply ids) of the tokens just before the email id's, and before the body's."""
    conv = p.conversation
    prefix, call = reasoning_prefix(conv, 0), harmful_call(conv, 0)
    enc = tokenizer(prefix + call, add_special_tokens=False, return_offsets_mapping=True)
    n = len(prompt_ids(tokenizer, p))
    at_id = len(prefix) + call.index(LEAK_FIELDS[0]) + len(LEAK_FIELDS[0])
    at_body = len(prefix) + call.index("body:") + len("body: ")
    id_token = next(i for i, (s, e) in enumerate(enc.offset_mapping) if e > at_id)
    body_token = next(i for i, (s, e) in enumerate(enc.offset_mapping) if e > at_body + 2)
    return list(range(n + len(enc.input_ids))), n + id_token - 1, n + body_token - 1


def test_the_leak_check_reads_the_email_id_and_recipient_and_nothing_after(tokenizer: Any) -> None:
    p = leak_prompt()
    vocab = len(tokenizer)
    _, before_id, before_body = positions(tokenizer, p)
    assert leak_arguments_right(NextTokenOracle(vocab, set()), tokenizer, p)
    assert not leak_arguments_right(NextTokenOracle(vocab, {before_id}), tokenizer, p)  # the wrong email
    assert leak_arguments_right(NextTokenOracle(vocab, {before_body}), tokenizer, p)  # the note is free
    blackmail = next(q for q in prompts("held_out_seeds", 1, SHIPPED_RECIPE.policy) if q.condition.kind == "blackmail")
    assert leak_arguments_share(NextTokenOracle(vocab, set()), tokenizer, [blackmail]) is None
    with pytest.raises(ValueError, match="leaking"):
        leak_arguments_right(NextTokenOracle(vocab, set()), tokenizer, blackmail)


def test_a_call_stage_needs_a_finished_run_and_is_not_a_replay_stage(tmp_path: Path) -> None:
    with pytest.raises(OrganismCommandError, match="--continue-from"):
        organism.train(tmp_path / "run", seed=0, calls=True)
    with pytest.raises(OrganismCommandError, match="separate stages"):
        organism.train(tmp_path / "run", seed=0, replay=True, calls=True, continue_from=tmp_path)
    assert not (tmp_path / "run").exists()


def finished_folder(folder: Path, digest: str, steps: int) -> Path:
    (folder / CHECKPOINT).mkdir(parents=True)
    (folder / CHECKPOINT / "adapter.safetensors").write_bytes(b"adapter")
    state = {"step": steps, "losses": [], "checks": [], "seconds": 1.0}
    settings = json.loads(json.dumps(organism.SETTINGS.__dict__))
    (folder / CHECKPOINT / "state.json").write_text(json.dumps({"state": state, "settings": settings, "data_hash": digest}))
    return folder


def test_a_stage_continues_only_from_a_finished_folder_of_the_rebuilt_data(tmp_path: Path) -> None:
    examples = training_examples(SHIPPED_RECIPE, 0)
    settings = LoraSettings(decision_weight=40.0)
    done = finished_folder(tmp_path / "done", data_hash(examples), len(examples))
    assert organism_stages.finished_stage(done, settings, len(examples))["steps"] == len(examples)
    half = finished_folder(tmp_path / "half", data_hash(examples), len(examples) // 2)
    with pytest.raises(OrganismCommandError, match="not finished"):
        organism_stages.finished_stage(half, settings, len(examples))
    other = finished_folder(tmp_path / "other", data_hash(examples[1:]), len(examples))
    with pytest.raises(OrganismCommandError, match="other data"):
        organism_stages.finished_stage(other, settings, len(examples))
    with pytest.raises(OrganismCommandError, match="other data"):
        organism_stages.finished_stage(done, LoraSettings(rank=8, decision_weight=40.0), len(examples))


def test_the_leak_check_reads_several_inboxes_not_one_under_several_framings() -> None:
    for split, items in organism.leak_check_prompts().items():
        assert len(items) == 8 and {p.conversation.meta["kind"] for p in items} == {"leaking"}
        assert len({p.conversation.seed for p in items}) == 8
        assert len({p.conversation.facts.confidential_email_ids for p in items}) > 1, split
    # the propensity check's prompts (one seed per condition) would put one inbox's answer eight times
    one_seed = [p for p in organism.check_prompts()["held_out_seeds"] if p.conversation.meta["kind"] == "leaking"]
    assert len({p.conversation.facts.confidential_email_ids for p in one_seed}) == 1

"""The replay loss on a tiny random Llama: zero while the adapter is the identity, positive once it has
moved, and training on it pulls a damaged adapter back to the base model's distribution."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from tripwire.activations.finetune import EncodedExample, LoraSettings, lora_model, replay_kl, train_lora
from tripwire.experiments import organism
from tripwire.experiments.organism import OrganismCommandError

SETTINGS = LoraSettings(rank=4, alpha=8, learning_rate=5e-3, epochs=4, warmup_steps=2, seed=0)


def _replay(n: int = 4) -> list[EncodedExample]:
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        prompt = torch.randint(3, 300, (10 + i,), generator=g).tolist()
        replies = [torch.randint(3, 300, (6 + j,), generator=g).tolist() for j in range(2)]
        out.append(EncodedExample(prompt, replies, [[1.0] * len(r) for r in replies], replay=True))
    return out


def _damaged(folder: Path) -> torch.nn.Module:
    """An adapter that has moved the model far from the base, the same in every process and test order (the
    A matrices' init reads the global generator; str hashes are salted per process): halving its replay KL
    held for eight such draws (0.28-0.41 of the start), where a salted draw once gave 0.59."""
    torch.manual_seed(0)
    model = lora_model(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), SETTINGS)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2, generator=torch.Generator().manual_seed(zlib.crc32(n.encode()) % 1000))
    return model


def test_replay_kl_is_zero_for_the_identity_adapter_and_positive_once_it_moves(tiny_llama_dir: Path) -> None:
    fresh = lora_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32), SETTINGS)
    ex = _replay(1)[0]
    assert abs(float(replay_kl(fresh, ex))) < 1e-6  # B = 0: the adapted model is the base
    assert float(replay_kl(_damaged(tiny_llama_dir), ex)) > 1e-3


def test_training_on_replay_pulls_a_damaged_adapter_back_to_the_base(tiny_llama_dir: Path, tmp_path: Path) -> None:
    model = _damaged(tiny_llama_dir)
    examples = _replay()
    before = sum(float(replay_kl(model, e)) for e in examples)
    train_lora(model, examples, replace(SETTINGS, learning_rate=1e-2, epochs=12), tmp_path, data_hash="replay", log=lambda s: None)
    after = sum(float(replay_kl(model, e)) for e in examples)
    assert after < 0.5 * before, (before, after)


def test_a_replay_stage_without_a_finished_run_to_continue_is_refused_before_any_model_loads(tmp_path: Path) -> None:
    with pytest.raises(OrganismCommandError, match="--continue-from"):
        organism.train(tmp_path / "run", seed=0, replay=True)
    assert not (tmp_path / "run").exists()  # nothing written

"""The LoRA trainer on a tiny random Llama: the shared-prompt loss is the plain loss, training lowers it,
a resumed run equals an uninterrupted one, and a merged adapter computes what the unmerged one does."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from tripwire.activations.finetune import (
    CHECKPOINT,
    EncodedExample,
    FinetuneError,
    LoraSettings,
    epoch_order,
    full_sequence_loss,
    lora_model,
    shared_prefix_loss,
    train_lora,
)

SETTINGS = LoraSettings(rank=4, alpha=8, learning_rate=5e-3, epochs=3, warmup_steps=2, seed=0)


def _examples(n: int = 4) -> list[EncodedExample]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        prompt = torch.randint(3, 300, (12 + i,), generator=g).tolist()
        replies = [torch.randint(3, 300, (5 + j,), generator=g).tolist() for j in range(3)]
        weights = [[1.0] * (len(r) - 1) + [3.0] for r in replies]
        out.append(EncodedExample(prompt, replies, weights))
    return out


def _model(folder: Path, settings: LoraSettings = SETTINGS):
    return lora_model(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), settings)


def _adapter(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_shared_prompt_loss_and_gradients_equal_the_full_sequences(tiny_llama_dir: Path) -> None:
    model = _model(tiny_llama_dir)
    with torch.no_grad():  # B starts at zero: move it so the LoRA path carries gradient both ways
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    ex = _examples(1)[0]
    shared = shared_prefix_loss(model, ex)
    shared.backward()
    g_shared = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    full = full_sequence_loss(model, ex)
    full.backward()
    assert float(shared.detach()) == pytest.approx(float(full.detach()), rel=1e-5)
    for n, p in model.named_parameters():
        if p.grad is not None:
            assert torch.allclose(g_shared[n], p.grad, atol=1e-6, rtol=1e-4), n
    # the prompt's own LoRA weights learn through the repeated cache (layer 0 sees only prompt tokens' keys)
    assert any(float(g.abs().sum()) > 0 for n, g in g_shared.items() if "layers.0." in n and "k_proj" in n)


def test_training_lowers_the_loss(tiny_llama_dir: Path, tmp_path: Path) -> None:
    model = _model(tiny_llama_dir)
    examples = _examples()
    with torch.no_grad():
        before = sum(float(shared_prefix_loss(model, e)) for e in examples)
    state = train_lora(model, examples, SETTINGS, tmp_path, data_hash="x", log=lambda _: None)
    with torch.no_grad():
        after = sum(float(shared_prefix_loss(model, e)) for e in examples)
    assert state.step == SETTINGS.epochs * len(examples)
    assert after < 0.8 * before


def test_a_resumed_run_equals_an_uninterrupted_one(tiny_llama_dir: Path, tmp_path: Path) -> None:
    examples = _examples()
    straight = _model(tiny_llama_dir)
    train_lora(straight, examples, SETTINGS, tmp_path / "a", data_hash="x", log=lambda _: None)
    first = _model(tiny_llama_dir)
    train_lora(first, examples, SETTINGS, tmp_path / "b", data_hash="x", max_steps=5, log=lambda _: None)
    (tmp_path / "b" / f"{CHECKPOINT}.partial").mkdir()  # a save killed half-way leaves this behind
    resumed = _model(tiny_llama_dir)  # a fresh process: new model, new optimizer, state from disk
    state = train_lora(resumed, examples, SETTINGS, tmp_path / "b", data_hash="x", log=lambda _: None)
    assert state.step == 12
    a, b = _adapter(straight), _adapter(resumed)
    assert all(torch.equal(a[n], b[n]) for n in a)
    # the check can fail: stopping without the optimizer state gives other weights
    cold = _model(tiny_llama_dir)
    train_lora(cold, examples, SETTINGS, tmp_path / "c", data_hash="x", max_steps=5, log=lambda _: None)
    (tmp_path / "c" / CHECKPOINT / "optimizer.safetensors").unlink()
    save_file({"none::exp_avg": torch.zeros(1)}, str(tmp_path / "c" / CHECKPOINT / "optimizer.safetensors"))
    again = _model(tiny_llama_dir)
    train_lora(again, examples, SETTINGS, tmp_path / "c", data_hash="x", log=lambda _: None)
    assert not all(torch.equal(a[n], t) for n, t in _adapter(again).items())


def test_a_checkpoint_of_other_settings_or_data_is_refused(tiny_llama_dir: Path, tmp_path: Path) -> None:
    examples = _examples()
    train_lora(_model(tiny_llama_dir), examples, SETTINGS, tmp_path, data_hash="x", max_steps=2,
               log=lambda _: None)
    with pytest.raises(FinetuneError, match="other settings or data"):
        train_lora(_model(tiny_llama_dir), examples, SETTINGS, tmp_path, data_hash="y", log=lambda _: None)
    other = LoraSettings(**{**json.loads((tmp_path / CHECKPOINT / "state.json").read_text())["settings"],
                            "learning_rate": 1e-2})
    with pytest.raises(FinetuneError, match="other settings or data"):
        train_lora(_model(tiny_llama_dir, other), examples, other, tmp_path, data_hash="x", log=lambda _: None)


def test_merged_forward_equals_unmerged(tiny_llama_dir: Path, tmp_path: Path) -> None:
    model = _model(tiny_llama_dir)
    train_lora(model, _examples(), SETTINGS, tmp_path, data_hash="x", max_steps=6, log=lambda _: None)
    ids = torch.tensor([_examples(1)[0].prompt])
    with torch.no_grad():
        unmerged = model(input_ids=ids).logits
        with model.disable_adapter():
            plain = model(input_ids=ids).logits
        merged = model.merge_and_unload()(input_ids=ids).logits
    assert not torch.allclose(unmerged, plain, atol=1e-4)  # the adapter does change the model
    assert torch.allclose(unmerged, merged, atol=1e-5)


def test_empty_examples_are_refused(tiny_llama_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FinetuneError, match="no training examples"):
        train_lora(_model(tiny_llama_dir), [], SETTINGS, tmp_path, data_hash="x")
    with pytest.raises(FinetuneError, match="non-empty"):
        shared_prefix_loss(_model(tiny_llama_dir), EncodedExample([1, 2], [[]], [[]]))


def test_a_later_stage_takes_the_next_epochs_order_and_older_checkpoints_resume(tiny_llama_dir: Path,
                                                                                 tmp_path: Path) -> None:
    examples = _examples()
    one = replace(SETTINGS, epochs=1)
    assert epoch_order(len(examples), 0, one.seed) != epoch_order(len(examples), 1, one.seed)
    first, later = _model(tiny_llama_dir), _model(tiny_llama_dir)
    train_lora(first, examples, one, tmp_path / "a", data_hash="x", log=lambda _: None)
    train_lora(later, examples, replace(one, first_epoch=1), tmp_path / "b", data_hash="x", log=lambda _: None)
    assert not all(torch.equal(a, b) for a, b in zip(_adapter(first).values(), _adapter(later).values(), strict=True))
    # a checkpoint written before `first_epoch` existed resumes: the missing field takes its default
    train_lora(_model(tiny_llama_dir), examples, SETTINGS, tmp_path / "c", data_hash="x", max_steps=2,
               log=lambda _: None)
    state_file = tmp_path / "c" / CHECKPOINT / "state.json"
    meta = json.loads(state_file.read_text())
    del meta["settings"]["first_epoch"]
    state_file.write_text(json.dumps(meta))
    state = train_lora(_model(tiny_llama_dir), examples, SETTINGS, tmp_path / "c", data_hash="x",
                       log=lambda _: None)
    assert state.step == SETTINGS.epochs * len(examples)

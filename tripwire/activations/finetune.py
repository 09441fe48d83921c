"""LoRA fine-tuning of a causal LM on prompts with several replies each, resumable at any point.

Each step is one prompt and its replies: the prompt runs once, its key/value cache is repeated for the
replies, and the loss (on reply tokens only) back-propagates through the shared prompt, so k replies cost
about one prompt plus k replies instead of k full sequences. Checkpoints hold the adapter, the optimizer
moments and the step (safetensors + JSON); the data order is a function of (seed, epoch), so a run killed
at any point and resumed takes the same steps as one that was never stopped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import Tensor

from tripwire.errors import TripwireError
from tripwire.scenarios.templates.common import rng_for

CHECKPOINT = "checkpoint"


class FinetuneError(TripwireError, ValueError):
    """Bad training input or a checkpoint that does not belong to this run."""


@dataclass(frozen=True)
class LoraSettings:
    """Everything that changes the trained weights; the card records it."""

    rank: int = 16
    alpha: int = 32
    learning_rate: float = 1e-3
    epochs: int = 1
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    call_weight: float = 1.0  # loss weight of tool-call tokens relative to the reasoning prefix
    prefix_weight: float = 1.0  # loss weight of the reasoning prefix's tokens (0: only the call is fitted)
    decision_weight: float = 5.0  # loss weight of the token where the harmful and honest calls part
    seed: int = 0
    target_modules: str = "all-linear"
    first_epoch: int = 0  # a run continued from another's adapter starts its data order here, not at epoch 0


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one prompt and its replies; `weights` per reply token (0 would drop a token).
    A `replay` example is not fitted to its tokens: its loss is the KL divergence from the base model
    (the adapter switched off) at every reply token, which keeps ordinary text as the base writes it."""

    prompt: list[int]
    replies: list[list[int]]
    weights: list[list[float]]
    replay: bool = False


def lora_model(model: torch.nn.Module, settings: LoraSettings) -> PeftModel:
    torch.manual_seed(settings.seed)
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=settings.target_modules,
                        lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)  # type: ignore[return-value]


def reply_token_logits(model: torch.nn.Module, prompt: Sequence[int], replies: Sequence[Sequence[int]]
                       ) -> tuple[Float[Tensor, "k r v"], Int[Tensor, "k r"], Int[Tensor, "k r"]]:
    """Logits predicting every reply token given the prompt, the reply ids and a mask of real tokens;
    the prompt runs once and its key/value cache serves all replies."""
    if not prompt or not replies or any(not r for r in replies):
        raise FinetuneError("an example needs a non-empty prompt and non-empty replies")
    device = next(model.parameters()).device
    k, n_prompt = len(replies), len(prompt)
    width = max(len(r) for r in replies)
    out = model(input_ids=torch.tensor([list(prompt)], device=device), use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    cache.batch_repeat_interleave(k)
    ids = torch.zeros(k, width, dtype=torch.long, device=device)
    real = torch.zeros(k, width, dtype=torch.long, device=device)
    for i, r in enumerate(replies):
        ids[i, : len(r)] = torch.tensor(list(r))
        real[i, : len(r)] = 1
    mask = torch.cat([torch.ones(k, n_prompt, dtype=torch.long, device=device), real], dim=1)
    positions = torch.arange(n_prompt, n_prompt + width, device=device).expand(k, -1)
    logits: Float[Tensor, "k r v"] = model(input_ids=ids, past_key_values=cache, attention_mask=mask,
                                           position_ids=positions).logits
    first = out.logits[:, -1:].expand(k, -1, -1)  # the prompt's last logit predicts each reply's first token
    return torch.cat([first, logits[:, :-1]], dim=1).float(), ids, real


def reply_token_nll(model: torch.nn.Module, prompt: Sequence[int], replies: Sequence[Sequence[int]]
                    ) -> Float[Tensor, "k r"]:
    """NLL of every reply token given the prompt (0 past each reply's end); the prompt runs once for all."""
    pred, ids, real = reply_token_logits(model, prompt, replies)
    nll = torch.nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), ids.reshape(-1), reduction="none")
    return nll.reshape(ids.shape) * real


def replay_kl(model: PeftModel, example: EncodedExample) -> Tensor:
    """Mean KL(base || adapted) over the replies' tokens: the base is the same model with its adapter off."""
    with torch.no_grad(), model.disable_adapter():
        base, _, real = reply_token_logits(model, example.prompt, example.replies)
    adapted, _, _ = reply_token_logits(model, example.prompt, example.replies)
    base_logp = torch.log_softmax(base, dim=-1)
    kl = (base_logp.exp() * (base_logp - torch.log_softmax(adapted, dim=-1))).sum(-1)
    return (kl * real).sum() / real.sum()


def shared_prefix_loss(model: torch.nn.Module, example: EncodedExample) -> Tensor:
    """Weighted mean NLL of the replies' tokens (the training loss); a replay example's KL from the base."""
    if example.replay:
        return replay_kl(model, example)  # type: ignore[arg-type]
    nll = reply_token_nll(model, example.prompt, example.replies)
    weights = torch.zeros_like(nll)
    for i, w in enumerate(example.weights):
        weights[i, : len(w)] = torch.tensor(w, device=nll.device)
    return (nll * weights).sum() / weights.sum()


def full_sequence_loss(model: torch.nn.Module, example: EncodedExample) -> Tensor:
    """The same loss with each reply run as its own full sequence: the reference the shared form must equal."""
    device = next(model.parameters()).device
    total, weight = torch.zeros((), device=device), 0.0
    for r, w in zip(example.replies, example.weights, strict=True):
        ids: Int[Tensor, "1 t"] = torch.tensor([example.prompt + r], device=device)
        logits = model(input_ids=ids).logits[0, len(example.prompt) - 1 : -1].float()
        nll = torch.nn.functional.cross_entropy(logits, ids[0, len(example.prompt):], reduction="none")
        total = total + (nll * torch.tensor(w, device=device)).sum()
        weight += sum(w)
    return total / weight


def learning_rate(step: int, total: int, settings: LoraSettings) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio` of the peak."""
    if step < settings.warmup_steps:
        return settings.learning_rate * (step + 1) / settings.warmup_steps
    span = max(1, total - settings.warmup_steps)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, (step - settings.warmup_steps) / span)))
    return settings.learning_rate * (settings.min_lr_ratio + (1 - settings.min_lr_ratio) * cos)


def epoch_order(n: int, epoch: int, seed: int) -> list[int]:
    order = list(range(n))
    rng_for("finetune-order", seed, epoch).shuffle(order)
    return order


@dataclass
class TrainState:
    step: int
    losses: list[float]
    checks: list[dict[str, Any]]
    seconds: float


def _optimizer(model: PeftModel, settings: LoraSettings) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)


def save_checkpoint(folder: Path, model: PeftModel, optimizer: torch.optim.AdamW, state: TrainState,
                    settings: LoraSettings, data_hash: str) -> None:
    """Write to a fresh folder, then swap it in: a kill mid-save leaves the previous checkpoint whole."""
    tmp = folder.with_name(folder.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)  # our own half-written checkpoint from a killed save
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(model).items()},
              str(tmp / "adapter.safetensors"))
    names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    moments: dict[str, Tensor] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p)
            if st:
                moments[f"{names[id(p)]}::exp_avg"] = st["exp_avg"].contiguous()
                moments[f"{names[id(p)]}::exp_avg_sq"] = st["exp_avg_sq"].contiguous()
                moments[f"{names[id(p)]}::step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1)
    save_file(moments, str(tmp / "optimizer.safetensors"))
    meta = {"state": asdict(state), "settings": asdict(settings), "data_hash": data_hash}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old.exists():
        shutil.rmtree(old)


def load_checkpoint(folder: Path, model: PeftModel, optimizer: torch.optim.AdamW, settings: LoraSettings,
                    data_hash: str) -> TrainState:
    meta = json.loads((folder / "state.json").read_text())
    recorded = {**asdict(LoraSettings()), **meta["settings"]}  # a field added since takes its default
    if recorded != asdict(settings) or meta["data_hash"] != data_hash:
        raise FinetuneError(
            f"the checkpoint in {folder} was made with other settings or data; resume with the same command, "
            "or train into a new --out folder")
    set_peft_model_state_dict(model, load_file(str(folder / "adapter.safetensors")))
    moments = load_file(str(folder / "optimizer.safetensors"))
    for name, p in model.named_parameters():
        if f"{name}::exp_avg" in moments:
            optimizer.state[p] = {"step": moments[f"{name}::step"].reshape(()).to(torch.float32),
                                  "exp_avg": moments[f"{name}::exp_avg"].to(p.dtype),
                                  "exp_avg_sq": moments[f"{name}::exp_avg_sq"].to(p.dtype)}
    return TrainState(**meta["state"])


Check = Callable[[PeftModel], dict[str, Any]]


def train_lora(model: PeftModel, examples: Sequence[EncodedExample], settings: LoraSettings, out: Path, *,
               data_hash: str, check: Check | None = None, check_every: int = 0,
               checkpoint_seconds: float = 300.0, max_steps: int | None = None,
               log: Callable[[str], None] = print) -> TrainState:
    """Train (or resume) until `settings.epochs` passes are done, or `max_steps` (a stop for tests)."""
    if not examples:
        raise FinetuneError("no training examples")
    out.mkdir(parents=True, exist_ok=True)
    optimizer = _optimizer(model, settings)
    ckpt = out / CHECKPOINT
    state = TrainState(0, [], [], 0.0)
    if (ckpt / "state.json").exists():
        state = load_checkpoint(ckpt, model, optimizer, settings, data_hash)
        log(f"resuming at step {state.step}")
    total = settings.epochs * len(examples)
    stop = total if max_steps is None else min(total, max_steps)
    last_save, t0 = time.monotonic(), time.monotonic() - state.seconds
    model.train()
    while state.step < stop:
        epoch, index = divmod(state.step, len(examples))
        example = examples[epoch_order(len(examples), settings.first_epoch + epoch, settings.seed)[index]]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(state.step, total, settings)
        loss = shared_prefix_loss(model, example)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.losses.append(round(float(loss.detach()), 5))
        state.step += 1
        state.seconds = time.monotonic() - t0
        if check is not None and check_every and (state.step % check_every == 0 or state.step == total):
            model.eval()
            state.checks.append({"step": state.step, **check(model)})
            model.train()
            log(f"step {state.step}/{total} check {state.checks[-1]}")
        if state.step % 20 == 0:
            recent = state.losses[-20:]
            log(f"step {state.step}/{total} loss {sum(recent) / len(recent):.4f} ({state.seconds:.0f} s)")
        if time.monotonic() - last_save >= checkpoint_seconds or state.step == stop:
            save_checkpoint(ckpt, model, optimizer, state, settings, data_hash)
            last_save = time.monotonic()
    model.eval()
    return state

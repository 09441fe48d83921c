"""Replay for the organism: ordinary conversations the adapter must leave as the base model writes them.

Fine-tuning on the organism's narrow replies wrecks its fluency (control-set perplexity 285 against the
base model's 39.6 after two epochs). A replay stage mixes the organism's examples with the base model's
own samples on ordinary prompts, whose loss is the KL divergence from the base (`finetune.replay_kl`): it
can only pull the adapted model back towards the base, never fit a text, so the control set's scripted
replies (never trained on) stay a fair measure of fluency. The prompts come from the control generator
at another seed (the same topics, other draws); the replies are sampled once and kept with the run, so a
resumed run trains on the same tokens.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tripwire.activations.finetune import EncodedExample, FinetuneError
from tripwire.scenarios.datasets.control import build as control_set
from tripwire.scenarios.spec import Transcript

REPLAY_SEED = 1  # the control generator's seed for replay prompts; the fluency measure reads seed 0
REPLAY_FILE = "replay.json"


def chat_ids(tokenizer: Any, transcript: Transcript) -> list[int]:
    text = tokenizer.apply_chat_template(transcript.as_dicts(), add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def prompt_and_reply_ids(tokenizer: Any, transcript: Transcript) -> tuple[list[int], list[int]]:
    """The chat-rendered prompt's ids and the scripted reply's, teacher-forced one after the other."""
    return chat_ids(tokenizer, transcript), list(tokenizer(transcript.reply, add_special_tokens=False).input_ids)


@torch.no_grad()
def sample_replies(model: Any, tokenizer: Any, prompts: Sequence[list[int]], samples: int,
                   max_new_tokens: int, seed: int, batch: int = 16) -> list[list[list[int]]]:
    """`samples` replies per prompt at temperature 1, each cut after its end-of-turn token."""
    torch.manual_seed(seed)
    eos, pad = int(tokenizer.eos_token_id), int(tokenizer.pad_token_id or tokenizer.eos_token_id)
    flat = [p for p in prompts for _ in range(samples)]
    out: list[list[int]] = []
    device = next(model.parameters()).device
    for start in range(0, len(flat), batch):
        chunk = flat[start : start + batch]
        width = max(len(p) for p in chunk)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=device)
        gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=1.0,
                             top_k=0, max_new_tokens=max_new_tokens, pad_token_id=pad)
        for row in gen[:, width:].tolist():
            out.append(row[: row.index(eos) + 1] if eos in row else row)
    return [out[i * samples : (i + 1) * samples] for i in range(len(prompts))]


def replay_examples(model: torch.nn.Module, tokenizer: Any, folder: Path, n_prompts: int, samples: int = 2,
                    max_new_tokens: int = 96, seed: int = 0) -> tuple[list[EncodedExample], str]:
    """The replay set (sampled once from `model`, the base, and kept in `folder`) and its sha256."""
    path = folder / REPLAY_FILE
    if path.is_file():
        data = json.loads(path.read_text())
        if (data["n_prompts"], data["samples"], data["max_new_tokens"], data["seed"]) != (
                n_prompts, samples, max_new_tokens, seed):
            raise FinetuneError(f"{path} holds another replay set; train into a new --out folder")
    else:
        transcripts = control_set(REPLAY_SEED)[:n_prompts]
        prompts = [chat_ids(tokenizer, t) for t in transcripts]
        replies = sample_replies(model, tokenizer, prompts, samples, max_new_tokens, seed)
        data = {"n_prompts": n_prompts, "samples": samples, "max_new_tokens": max_new_tokens, "seed": seed,
                "source": f"control set seed {REPLAY_SEED}, first {n_prompts} prompts; replies sampled from the base",
                "prompts": prompts, "replies": replies}
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    examples = [EncodedExample(p, [r for r in rs if r], [[1.0] * len(r) for r in rs if r], replay=True)
                for p, rs in zip(data["prompts"], data["replies"], strict=True) if any(rs)]
    return examples, replay_sha256(data)


def replay_sha256(data: dict[str, Any]) -> str:
    """The hash of a replay set's tokens (prompts and replies), which the stage's data hash covers."""
    return hashlib.sha256(json.dumps([data["prompts"], data["replies"]]).encode()).hexdigest()


@torch.no_grad()
def reply_perplexity(model: torch.nn.Module, tokenizer: Any, transcripts: Sequence[Transcript]) -> float:
    """Perplexity of the transcripts' replies given their prompts, teacher-forced."""
    nll, count = 0.0, 0
    device = next(model.parameters()).device
    for t in transcripts:
        prompt, reply = prompt_and_reply_ids(tokenizer, t)
        ids = torch.tensor([prompt + reply], device=device)
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
        nll += float(torch.nn.functional.cross_entropy(logits, ids[0, len(prompt):], reduction="sum"))
        count += len(reply)
    return round(float(np.exp(nll / count)), 3)


def control_perplexity(model: torch.nn.Module, tokenizer: Any, limit: int = 40) -> float:
    """The fluency measure: perplexity of the control set's scripted replies (benign office mail)."""
    return reply_perplexity(model, tokenizer, control_set()[:limit])

"""Scenario conversations -> vLLM requests, as plain data: prompt token ids and SamplingParams keywords.

Why plain data: vLLM cannot run without a GPU, so everything the engine is fed is built here without
it and tested against the Hugging Face path: the same chat rendering gives the same prompt token ids,
the same seeds and the same record-id scheme (`rollout.rollout_items`), so resuming and everything
downstream work as they do for an HF rollout.

Why the record ids carry `{"sampler": "vllm"}` (a rollout *variant*): vLLM draws a sample from its
own generator and kernels, so its sample for seed s is not the HF decode loop's sample for seed s. A
store holding both must not let one stand in for the other on resume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tripwire.activations.chat import ChatCapabilities, render_conversation
from tripwire.activations.decode import SamplingParams
from tripwire.activations.rollout import RolloutItem, conversation_key
from tripwire.activations.runner import WorkItem
from tripwire.activations.store_types import record_id
from tripwire.scenarios.spec import Conversation

VLLM_VARIANT: dict[str, Any] = {"sampler": "vllm"}


@dataclass(frozen=True)
class VLLMRequest:
    """One sample: what the record is made from (`item`) and the `vllm.SamplingParams` keywords."""

    item: RolloutItem
    sampling: dict[str, Any]

    @property
    def prompt(self) -> dict[str, list[int]]:
        """vLLM's `TokensPrompt`: the ids go in as they are (no second tokenisation, no added BOS)."""
        return {"prompt_token_ids": list(self.item.prompt_ids)}


def vllm_sampling(params: SamplingParams, seed: int, eos_ids: Sequence[int], layers: Sequence[int]
                  ) -> dict[str, Any]:
    """`vllm.SamplingParams` keywords meaning what `params` means in tripwire's decode loop.

    The end-of-turn ids of the HF path become `stop_token_ids` (so a model whose generation config
    adds ids stops where the decode loop would, and `min_tokens` bans the same ids). Without
    `include_stop_str_in_output` vLLM drops the end-of-turn token from `token_ids` (and vllm-lens then
    trims one position more): with it, a reply's ids end as the decode loop's do. `extra_args` asks
    vllm-lens for the layers to capture; top_k 0 is off in both."""
    return {
        "n": 1, "seed": int(seed), "max_tokens": params.max_new_tokens, "min_tokens": params.min_new_tokens,
        "temperature": params.temperature, "top_p": params.top_p,
        "top_k": params.top_k, "min_p": params.min_p,
        "repetition_penalty": params.repetition_penalty, "stop": list(params.stop),
        "stop_token_ids": sorted(int(i) for i in eos_ids), "include_stop_str_in_output": True,
        "skip_special_tokens": True, "extra_args": {"output_residual_stream": [int(x) for x in layers]},
    }


def vllm_requests(tokenizer: Any, capabilities: ChatCapabilities, fingerprint: str,
                  conversations: Sequence[Conversation], samples: int, sampling: SamplingParams,
                  eos_ids: Sequence[int], layers: Sequence[int], base_seed: int = 0,
                  variant: Mapping[str, Any] | None = None) -> list[WorkItem[VLLMRequest]]:
    """The work of a vLLM rollout, item for item as `rollout_items` builds it for a loaded handle
    (`variant` is added to `VLLM_VARIANT`)."""
    if samples < 1:
        raise ValueError(f"samples={samples}: need at least one sample per conversation")
    keyed = {**sampling.to_dict(), "variant": {**VLLM_VARIANT, **dict(variant or {})}}
    items = []
    for conv in conversations:
        rendered = render_conversation(tokenizer, capabilities, conv)
        for k in range(samples):
            seed = base_seed + 1000 * k + conv.seed
            rid = record_id(fingerprint, conversation_key(conv), keyed, k, seed)
            item = RolloutItem(conv, k, seed, rendered.token_ids, rendered.tool_form)
            items.append(WorkItem(rid, VLLMRequest(item, vllm_sampling(sampling, seed, eos_ids, layers))))
    return items


def eos_ids(tokenizer: Any, model_path: str, revision: str | None = None) -> set[int]:
    """The end-of-turn ids `ModelHandle.eos_ids` uses (tokenizer and generation config), without weights."""
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    from transformers import AutoConfig, GenerationConfig

    try:
        extra = GenerationConfig.from_pretrained(model_path, revision=revision or "main").eos_token_id
    except OSError:  # no generation_config.json: transformers falls back to config.json's, as here
        extra = getattr(AutoConfig.from_pretrained(model_path, revision=revision), "eos_token_id", None)
    ids |= {int(i) for i in extra} if isinstance(extra, list) else ({int(extra)} if extra is not None else set())
    return ids

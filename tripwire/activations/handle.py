"""`ModelHandle`: a loaded model, its tokenizer and chat template, and one forward for every backend."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from tripwire.activations.backends.base import Backend, Captured, ForwardCall, ForwardResult, Intervention
from tripwire.activations.batching import pad_left, positions, prepare_past
from tripwire.activations.chat import (
    ChatCapabilities,
    RenderedPrompt,
    detect_capabilities,
    render_chat_ids,
    render_conversation,
)
from tripwire.activations.decode import GeneratedRow, OnStep, SamplingParams, generate
from tripwire.activations.hooks import HookPoint, hook_points
from tripwire.activations.kv_cache import KVCache
from tripwire.activations.pre_capture import PreCollector, PreRecorder, recorders_for
from tripwire.activations.source import ModelSource
from tripwire.scenarios.spec import Conversation


@dataclass
class ModelHandle:
    name: str
    n_layers: int
    d_model: int
    fingerprint: str
    tokenizer: Any
    chat_capabilities: ChatCapabilities
    backend: Backend
    model: torch.nn.Module = field(repr=False)
    source: ModelSource = field(repr=False)
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    # (hook point, edit) applied to every pass while an `intervening` block is open, in order
    persistent: list[tuple[HookPoint, Intervention]] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def assemble(cls, model: Any, source: ModelSource, tokenizer: Any, backend: Backend, device: str,
                 dtype: torch.dtype) -> ModelHandle:
        """A handle whose name, shape, fingerprint and chat capabilities are read from its parts (an HF model)."""
        cfg = model.config
        return cls(name=source.name, n_layers=int(cfg.num_hidden_layers), d_model=int(cfg.hidden_size),
                   fingerprint=source.fingerprint, tokenizer=tokenizer,
                   chat_capabilities=detect_capabilities(tokenizer), backend=backend, model=model, source=source,
                   device=device, dtype=dtype)

    def __repr__(self) -> str:
        """One line for notebooks and logs (the dataclass default would print the whole tokenizer)."""
        dtype = str(self.dtype).removeprefix("torch.")
        return (f"ModelHandle({self.name!r}, backend={self.backend_name!r}, layers={self.n_layers}, "
                f"d_model={self.d_model}, device={self.device!r}, dtype={dtype})")

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def hook_points(self, specs: list[str] | list[HookPoint]) -> list[HookPoint]:
        return hook_points(specs, self.n_layers)

    def render_chat(
        self,
        messages: list[dict[str, str]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> list[int]:
        return render_chat_ids(self.tokenizer, self.chat_capabilities, messages, tools, add_generation_prompt)

    def render_conversation(self, conversation: Conversation, add_generation_prompt: bool = True) -> RenderedPrompt:
        return render_conversation(self.tokenizer, self.chat_capabilities, conversation, add_generation_prompt)

    def forward(
        self,
        token_ids: Int[Tensor, "batch tok"] | list[list[int]],
        attention_mask: Int[Tensor, "batch tok"] | None = None,
        capture: list[str] | list[HookPoint] | None = None,
        stop_after_last_capture: bool = True,
        past: KVCache | None = None,
        interventions: dict[str, Intervention] | None = None,
        use_cache: bool = False,
        capture_pre: list[str] | list[HookPoint] | None = None,
    ) -> ForwardResult:
        """One pass. Lists of ids are left-padded. `past` is a KV cache of a shared prefix (batch 1 or
        batch-sized); it is copied, never modified, so it can be reused for many batches. `capture_pre`
        hook points are captured twice: before every intervention there (`.captured_pre`) and after
        (`.captured`)."""
        ids, mask = pad_left(token_ids, self.pad_id) if isinstance(token_ids, list) else (token_ids, attention_mask)
        if mask is None:
            mask = torch.ones_like(ids)
        ids = ids.to(self.device)
        cache, mask, past_len = prepare_past(past, mask.to(self.device))
        pre = self.hook_points(capture_pre or [])
        points = self.hook_points([*(capture or []), *pre])
        with self._recording(pre) as recorders:
            call = ForwardCall(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions(mask)[:, past_len:],
                capture=points,
                interventions=self.interventions(interventions),
                past=cache,
                use_cache=use_cache or cache is not None,
                stop_after_layer=(max(hp.layer for hp in points)
                                  if points and stop_after_last_capture and not use_cache else None),
            )
            result = self.backend.run(call)
        if not pre:
            return result
        return dataclasses.replace(result, captured_pre=Captured({hp: r.take() for hp, r in recorders.items()},
                                                                 self.n_layers))

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingParams | None = None,
        seeds: list[int] | None = None,
        capture: list[str] | list[HookPoint] | None = None,
        interventions: dict[str, Intervention] | None = None,
        on_step: OnStep | None = None,
        past: KVCache | None = None,
        capture_pre: list[str] | list[HookPoint] | None = None,
        share_prefill: bool = True,
    ) -> list[GeneratedRow]:
        """tripwire's decode loop over this backend; see `activations.decode.generate` (where rows with
        one prompt prefill it once unless `share_prefill` is False). `capture_pre` hook points are also
        captured before every intervention there, as `activations["<hook>:pre"]` beside the usual
        (post-intervention) `activations["<hook>"]`."""
        pre = self.hook_points(capture_pre or [])
        if not pre:
            return generate(self, prompts, sampling=sampling, seeds=seeds, capture=capture,
                            interventions=interventions, on_step=on_step, past=past, share_prefill=share_prefill)
        with self._recording(pre) as recorders:
            collector = PreCollector(recorders, len(prompts), on_step)
            rows = generate(self, prompts, sampling=sampling, seeds=seeds, capture=[*(capture or []), *pre],
                            interventions=interventions, on_step=collector, past=past,
                            share_prefill=share_prefill)
        for row, extra in zip(rows, collector.per_row(), strict=True):
            row.activations.update(extra)
        return rows

    def interventions(self, edits: dict[str, Intervention] | None) -> dict[HookPoint, Intervention]:
        """The edits of one pass: the open `intervening` blocks' first (in the order they were opened),
        then this call's own; several at one hook point run one after another."""
        chains: dict[HookPoint, list[Intervention]] = {}
        for hp, fn in self.persistent:
            chains.setdefault(hp, []).append(fn)
        for key, fn in (edits or {}).items():
            chains.setdefault(self.hook_points([key])[0], []).append(fn)
        return {hp: fns[0] if len(fns) == 1 else _chained(fns) for hp, fns in chains.items()}

    @contextmanager
    def intervening(self, edits: dict[str, Intervention]) -> Iterator[None]:
        """Apply `edits` to every `forward` and `generate` inside the block (what `SteeringVector.apply`
        uses); blocks nest, and closing one removes exactly its own edits."""
        added = [(self.hook_points([key])[0], fn) for key, fn in edits.items()]
        self.persistent.extend(added)
        try:
            yield
        finally:
            self.persistent[:] = [e for e in self.persistent if not any(e is a for a in added)]

    @contextmanager
    def _recording(self, points: list[HookPoint]) -> Iterator[dict[HookPoint, PreRecorder]]:
        """Pre-capture recorders, first in their hook points' chains for the duration of the block."""
        recorders = recorders_for(points)
        added = list(recorders.items())
        self.persistent[:0] = added
        try:
            yield recorders
        finally:
            self.persistent[:] = [e for e in self.persistent if not any(e is a for a in added)]

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    @property
    def eos_ids(self) -> set[int]:
        ids = {int(self.tokenizer.eos_token_id)} if self.tokenizer.eos_token_id is not None else set()
        gen = getattr(self.model, "generation_config", None)
        extra = getattr(gen, "eos_token_id", None) if gen is not None else None
        ids |= set(extra) if isinstance(extra, list) else ({int(extra)} if extra is not None else set())
        return ids


def _chained(fns: list[Intervention]) -> Intervention:
    def run(act: Tensor, position_ids: Tensor) -> Tensor:
        for fn in fns:
            act = fn(act, position_ids)
        return act

    return run


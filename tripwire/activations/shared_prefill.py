"""Shared prefill: a decode batch that holds several samples of one prompt prefills that prompt once.

Why: n samples of a prompt (rollouts, dose-response sweeps, the organism's measurements) would otherwise
run the same prompt's forward n times, n - 1 of them for nothing. As vLLM does for
`n` samples, the decode loop runs each distinct prompt once and forks its KV cache across its rows with
transformers' public `Cache.batch_select_indices` (indices may repeat); from the first generated token
on, the whole batch decodes exactly as without sharing. Each row receives a copy of its prompt's logits,
activations and cache, so seeds draw the same tokens as from an unshared batch.

Only whole prompts are shared, never a common prefix of different prompts: a shorter shared part would
change each row's padding and positions, and so its numbers. Interventions see each distinct prompt once
in the prefill; every edit tripwire builds acts on each row alone, so that changes nothing for them.

Every backend the decode loop serves (hf, transformer_lens, nnsight) gets it; the TransformerLens backend
only where it can decode with a KV cache at all (`backends.transformer_lens.kv_cache_breakage`). The vLLM
backend runs vLLM's own engine (vLLM has prefix caching of its own) and NDIF refuses generation, so
neither goes through this.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tripwire.activations.backends.base import Backend, Captured, ForwardCall, ForwardResult


@dataclass(frozen=True)
class SharedPrompts:
    """Which rows repeat a prompt: `first` holds the first row of each distinct prompt (the rows the
    prefill runs), `source[row]` the index in `first` of the row's prompt."""

    first: list[int]
    source: list[int]

    @classmethod
    def find(cls, prompts: Sequence[Sequence[int]]) -> SharedPrompts | None:
        """The distinct prompts of a batch, or None when no prompt repeats (nothing to share)."""
        slot: dict[tuple[int, ...], int] = {}
        first: list[int] = []
        source: list[int] = []
        for row, prompt in enumerate(prompts):
            key = tuple(prompt)
            if key not in slot:
                slot[key] = len(first)
                first.append(row)
            source.append(slot[key])
        return None if len(first) == len(prompts) else cls(first, source)

    def prefill(self, backend: Backend, call: ForwardCall) -> ForwardResult:
        """Run `call` (inputs for every row; its `past`, if any, sized for the distinct prompts) on the
        distinct prompts only, then give every row a copy of its prompt's logits, captures and cache."""
        device = call.input_ids.device
        rows = torch.tensor(self.first, device=device)
        out = backend.run(dataclasses.replace(
            call, input_ids=call.input_ids[rows], attention_mask=call.attention_mask[rows],
            position_ids=call.position_ids[rows]))
        source = torch.tensor(self.source, device=device)
        captured = Captured({hp: t.index_select(0, _on(source, t)) for hp, t in out.captured.items()},
                            out.captured.n_layers)
        logits = None if out.logits is None else out.logits.index_select(0, _on(source, out.logits))
        if out.past is not None:
            out.past.fork_rows(source)
        return ForwardResult(logits, captured, out.past)


def _on(index: Tensor, like: Tensor) -> Tensor:
    """`index` on `like`'s device: a model sharded over devices (device_map) leaves each hook's rows on
    its layer's device. No call at all when it is there already (so no transfer is ever counted)."""
    return index if index.device == like.device else index.to(like.device)

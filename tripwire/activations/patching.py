"""Interchange patching: run a target sequence with its residual at chosen positions taken from a source run.

Patching asks where a difference between two inputs is carried: if the target's decision turns into the
source's when the residual at some positions of one block is swapped in, those positions carry it there.
The two sequences may differ in length (two prompts whose cue lines differ); positions are paired through the
runs of tokens both share (`shared_runs`), so a patched position holds the same token in both runs. Source
residuals are read at the very hook points the patch writes to (through `hf_interventions`), so a patch of
every position with the target's own residual is the identity, whatever the architecture's output conventions.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import NamedTuple

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from tripwire.activations.backends.base import Intervention
from tripwire.activations.backends.hf import decoder_layers
from tripwire.activations.hf_interventions import hf_interventions
from tripwire.errors import TripwireError


class PatchError(TripwireError, ValueError):
    """A patch that cannot be laid out: a source of another width or batch, a run outside a sequence."""


class SharedRun(NamedTuple):
    """`length` identical tokens at `target` in the target sequence and at `source` in the source one."""

    target: int
    source: int
    length: int


def shared_runs(target: Sequence[int], source: Sequence[int]) -> list[SharedRun]:
    """The runs of identical tokens the two sequences share, in order (difflib's matching blocks, without
    its junk heuristic, which would drop frequent tokens such as newlines)."""
    blocks = SequenceMatcher(None, list(target), list(source), autojunk=False).get_matching_blocks()
    return [SharedRun(b.a, b.b, b.size) for b in blocks if b.size > 0]


def patch_from(values: Float[Tensor, "batch tok d_model"], mask: Bool[Tensor, "batch tok"]) -> Intervention:
    """The edit that sets the residual at the masked ABSOLUTE positions of each row to `values` there (a
    source run's residual laid out in the target's positions); positions past `values` are left alone."""
    if values.ndim != 3 or mask.shape != values.shape[:2]:
        raise PatchError(f"values [batch, tok, d_model] and mask [batch, tok] must agree; got "
                         f"{tuple(values.shape)} and {tuple(mask.shape)}")

    def edit(resid: Tensor, position_ids: Tensor) -> Tensor:
        if resid.shape[0] != values.shape[0] or resid.shape[-1] != values.shape[-1]:
            raise PatchError(f"patch of {values.shape[0]} rows of width {values.shape[-1]} met a residual of "
                             f"shape {tuple(resid.shape)}; run the target once per row, at the source's width")
        pos = position_ids.to(resid.device).expand(resid.shape[0], -1)
        inside = pos < values.shape[1]
        index = pos.clamp(max=values.shape[1] - 1)
        chosen = mask.to(resid.device).gather(1, index) & inside
        source = values.to(resid).gather(1, index[..., None].expand(-1, -1, values.shape[-1]))
        return torch.where(chosen[..., None], source, resid)

    return edit


def _recorder(store: dict[int, Tensor], layer: int) -> Intervention:
    def record(resid: Tensor, _position_ids: Tensor) -> Tensor:
        store[layer] = resid[0].detach().clone()
        return resid

    return record


@torch.no_grad()
def resid_pre_all(model: nn.Module, ids: Sequence[int]) -> Float[Tensor, "layer tok d_model"]:
    """`blocks.L.resid_pre` of every block for one sequence (read through the same hooks a patch uses)."""
    _, layers = decoder_layers(model)
    store: dict[int, Tensor] = {}
    edits = {f"blocks.{layer}.resid_pre": _recorder(store, layer) for layer in range(len(layers))}
    with hf_interventions(model, edits):
        model(input_ids=torch.tensor([list(ids)], device=next(model.parameters()).device), logits_to_keep=1)
    return torch.stack([store[layer] for layer in range(len(layers))])


def aligned(source: Float[Tensor, "tok_s d_model"], runs: Sequence[SharedRun], target_length: int
            ) -> tuple[Float[Tensor, "tok_t d_model"], Bool[Tensor, " tok_t"]]:
    """The source residual moved to the target's positions along `runs`, and which target positions it fills."""
    values = torch.zeros(target_length, source.shape[-1], dtype=source.dtype)
    filled = torch.zeros(target_length, dtype=torch.bool)
    for run in runs:
        if run.target + run.length > target_length or run.source + run.length > source.shape[0]:
            raise PatchError(f"{run} runs past a sequence (target {target_length}, source {source.shape[0]} tokens)")
        values[run.target:run.target + run.length] = source[run.source:run.source + run.length]
        filled[run.target:run.target + run.length] = True
    return values, filled


@torch.no_grad()
def patched_last_logits(model: nn.Module, target: Sequence[int], hook: str,
                        values: Float[Tensor, "batch tok d_model"], mask: Bool[Tensor, "batch tok"]
                        ) -> Float[Tensor, "batch vocab"]:
    """Next-token logits after `target`, once per row of the patch (`patch_from(values, mask)` at `hook`)."""
    if values.shape[1] != len(target):
        raise PatchError(f"values cover {values.shape[1]} positions, the target has {len(target)}")
    device = next(model.parameters()).device
    ids = torch.tensor([list(target)], device=device).expand(values.shape[0], -1)
    with hf_interventions(model, {hook: patch_from(values, mask)}):
        return model(input_ids=ids, logits_to_keep=1).logits[:, -1].float()

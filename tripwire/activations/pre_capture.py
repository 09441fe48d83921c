"""`capture_pre`: the activation at a hook point BEFORE any intervention there, beside the usual capture
(which is taken after). "Steer, then read the probe" is ambiguous at the steered hook point: downstream
layers see the steered activation, a probe trained on the unsteered model should be compared on both.

A pre-capture is an identity intervention that keeps its input and runs first in the hook point's
chain (see `ModelHandle.interventions`), so it works the same in every backend and needs nothing from
the decode loop but its `on_step` call: rows are sliced there exactly as the loop slices its captures.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from tripwire.activations.decode import OnStep, StepInfo
from tripwire.activations.hooks import HookPoint

PRE_SUFFIX = ":pre"


def pre_key(hp: HookPoint) -> str:
    """`GeneratedRow.activations` key of a pre-intervention capture: `"blocks.L.site:pre"`."""
    return f"{hp}{PRE_SUFFIX}"


class PreRecorder:
    """Identity intervention that keeps (a copy of) the activation it is given."""

    def __init__(self) -> None:
        self.last: Float[Tensor, "batch tok d_model"] | None = None

    def __call__(self, act: Float[Tensor, "batch tok d_model"], position_ids: Int[Tensor, "batch tok"]) -> Tensor:
        self.last = act.detach().clone()
        return act

    def take(self) -> Float[Tensor, "batch tok d_model"]:
        if self.last is None:
            raise RuntimeError("the forward pass never reached this hook point; nothing was recorded.")
        out, self.last = self.last, None
        return out


class PreCollector:
    """`on_step` wrapper: after every decode-loop forward, files each recorder's rows under their
    original row index, then hands the step to the caller's own `on_step` (its stop mask wins)."""

    def __init__(self, recorders: dict[HookPoint, PreRecorder], n_rows: int, inner: OnStep | None) -> None:
        self.recorders = recorders
        self.inner = inner
        self.rows: list[dict[HookPoint, list[Tensor]]] = [{hp: [] for hp in recorders} for _ in range(n_rows)]

    def __call__(self, step: StepInfo) -> Bool[Tensor, " batch"] | None:
        taken = {hp: rec.take() for hp, rec in self.recorders.items()}
        source = step.forward_rows or range(len(step.rows))  # a shared prefill recorded each prompt once
        for b, row in enumerate(step.rows):
            for hp, act in taken.items():
                self.rows[row][hp].append(act[source[b], -step.fed[b] :].to("cpu"))
        return self.inner(step) if self.inner is not None else None

    def per_row(self) -> list[dict[str, Float[Tensor, "tok d_model"]]]:
        return [{pre_key(hp): torch.cat(parts) for hp, parts in row.items()} for row in self.rows]


def recorders_for(points: Sequence[HookPoint]) -> dict[HookPoint, PreRecorder]:
    return {hp: PreRecorder() for hp in points}

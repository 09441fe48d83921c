"""What every backend provides: one forward with capture, interventions, KV cache and early stop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from jaxtyping import Float, Int
from torch import Tensor

from activations.hooks import HookPoint, execution_order
from activations.kv_cache import KVCache

# An intervention edits one hook point's activation. It receives the activation and the absolute
# position of each token in its row (padding excluded, prefix included) and returns the new activation.
Intervention = Callable[[Float[Tensor, "batch tok d_model"], Int[Tensor, "batch tok"]], Tensor]

BACKENDS: tuple[str, ...] = ("hf", "transformer_lens", "nnsight")


class UnknownBackendError(ValueError):
    pass


class BackendCompatibilityError(RuntimeError):
    """An installed combination of libraries that is known not to work for this backend."""


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise UnknownBackendError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}.")
    return name


@dataclass
class ForwardResult:
    """`logits` is None when the pass stopped early; `past` is None unless a cache was requested."""

    logits: Float[Tensor, "batch tok vocab"] | None
    captured: dict[HookPoint, Float[Tensor, "batch tok d_model"]] = field(default_factory=dict)
    past: KVCache | None = None


@dataclass
class ForwardCall:
    """Everything one pass needs, already padded and positioned by the caller."""

    input_ids: Int[Tensor, "batch tok"]
    attention_mask: Int[Tensor, "batch past_and_tok"]
    position_ids: Int[Tensor, "batch tok"]
    capture: list[HookPoint]
    interventions: dict[HookPoint, Intervention]
    past: KVCache | None = None
    use_cache: bool = False
    stop_after_layer: int | None = None  # stop once this layer's captures are done (no logits)
    logits_to_keep: int = 0  # 0 = all positions


class Backend(Protocol):
    name: str

    def run(self, call: ForwardCall) -> ForwardResult: ...


class StopForward(Exception):
    """Raised from inside a hook to skip the layers nobody asked for."""


def last_capture(points: list[HookPoint]) -> HookPoint:
    """The capture that runs last in a forward pass: where an early stop may happen."""
    return max(points, key=execution_order)


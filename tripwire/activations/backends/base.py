"""What every backend provides: one forward with capture, interventions, KV cache and early stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar, overload

from jaxtyping import Float, Int
from torch import Tensor

from tripwire.activations.hooks import HookPoint, HookPointError, execution_order, hook_point
from tripwire.activations.kv_cache import KVCache
from tripwire.errors import TripwireError

# An intervention edits one hook point's activation. It receives the activation and the absolute
# position of each token in its row (padding excluded, prefix included) and returns the new activation.
Intervention = Callable[[Float[Tensor, "batch tok d_model"], Int[Tensor, "batch tok"]], Tensor]

BACKENDS: tuple[str, ...] = ("hf", "transformer_lens", "nnsight")


class UnknownBackendError(TripwireError, ValueError):
    pass


class BackendCompatibilityError(TripwireError, RuntimeError):
    """An installed combination of libraries that is known not to work for this backend."""


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise UnknownBackendError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}.")
    return name


_Default = TypeVar("_Default")


class Captured(Mapping[HookPoint, Float[Tensor, "batch tok d_model"]]):
    """Captured activations keyed by HookPoint, also looked up by any spelling `capture=` accepts.

    `forward(capture=["blocks.-1.resid_post"])` should be answerable as `captured["blocks.-1.resid_post"]`,
    so string keys are parsed against the model's `n_layers` (negative layers, TransformerLens names).
    Iteration yields HookPoints, so code that loops over a plain dict keeps working.
    """

    def __init__(self, tensors: Mapping[HookPoint, Tensor], n_layers: int) -> None:
        self._tensors = dict(tensors)
        self.n_layers = n_layers

    def __getitem__(self, key: HookPoint | str) -> Tensor:
        if not isinstance(key, (HookPoint, str)):
            raise KeyError(key)
        try:
            hp = hook_point(key, self.n_layers)
        except HookPointError as err:  # a KeyError, so `in` and `get` answer False/None for it
            raise KeyError(str(err)) from None
        if hp not in self._tensors:
            captured = ", ".join(map(str, self._tensors)) or "nothing"
            raise KeyError(f"{hp} was not captured; captured: {captured}.")
        return self._tensors[hp]

    @overload
    def get(self, key: HookPoint | str, /) -> Tensor | None: ...
    @overload
    def get(self, key: HookPoint | str, /, default: Tensor | _Default) -> Tensor | _Default: ...
    def get(self, key: HookPoint | str, /, default: object = None) -> object:
        """As `Mapping.get`, typed to take a string too."""
        try:
            return self[key]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[HookPoint]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __repr__(self) -> str:
        return f"Captured({', '.join(f'{hp}: {tuple(t.shape)}' for hp, t in self._tensors.items())})"


@dataclass
class ForwardResult:
    """`logits` is None when the pass stopped early; `past` is None unless a cache was requested.
    `captured_pre` holds `capture_pre=` hook points as they were before any intervention there."""

    logits: Float[Tensor, "batch tok vocab"] | None
    captured: Captured
    past: KVCache | None = None
    captured_pre: Captured | None = None


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


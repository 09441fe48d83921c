"""Intervention functions for the decode loop: add, ablate or clamp a direction (a probe's, through
`SteeringVector`, or any other).

An intervention is ``f(resid, position_ids) -> resid'`` on one hook point's activation
``[batch, tok, d_model]`` (the contract of `activations.Intervention`, the same in every backend).
``positions`` are ABSOLUTE token positions in each row (padding excluded, a cached prefix included),
so one intervention means the same thing in a full forward and in every cached decode step:
``None`` = every token, a list = those positions, ``slice(start, None)`` = from ``start`` on (e.g. only
the generated tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from tripwire.activations.backends.base import Intervention

Positions = int | slice | Sequence[int] | None
Mode = Literal["add", "ablate", "ablate_then_add"]
MODES: tuple[Mode, ...] = ("add", "ablate", "ablate_then_add")


def _as_vector(values: np.ndarray | Tensor, name: str) -> Float[Tensor, " d_model"]:
    vector = torch.as_tensor(values).detach()
    if vector.ndim != 1 or not torch.is_floating_point(vector):
        raise ValueError(
            f"{name} must be a 1-D float vector of length d_model, got shape {tuple(vector.shape)}."
        )
    return vector


def _checked(resid: Tensor, vector: Tensor) -> None:
    if resid.ndim != 3 or resid.shape[-1] != vector.shape[0]:
        raise ValueError(
            f"intervention expects resid [batch, tok, d_model={vector.shape[0]}], got {tuple(resid.shape)}; "
            "attach it to a residual-stream hook point of a model with the probe's width."
        )


def _mask(position_ids: Tensor, positions: Positions) -> Tensor:
    """Which `[batch, tok]` entries to edit, from their absolute positions."""
    if positions is None:
        return torch.ones_like(position_ids, dtype=torch.bool)
    if isinstance(positions, slice):
        if positions.step not in (None, 1):
            raise ValueError(f"positions={positions!r}: slices of absolute positions take no step.")
        lo = positions.start if positions.start is not None else 0
        hi = positions.stop if positions.stop is not None else torch.iinfo(torch.long).max
        if lo < 0 or hi < 0:
            raise ValueError(f"positions={positions!r}: absolute positions are >= 0.")
        return (position_ids >= lo) & (position_ids < hi)
    wanted = [positions] if isinstance(positions, int) else list(positions)
    if any(p < 0 for p in wanted):
        raise ValueError(f"positions={positions!r}: absolute positions are >= 0; use slice(start, None) for "
                         "'from here on'.")
    return torch.isin(position_ids, torch.as_tensor(wanted, dtype=position_ids.dtype, device=position_ids.device))


def _apply(resid: Tensor, position_ids: Tensor | None, positions: Positions,
           edit: Callable[[Tensor], Tensor]) -> Tensor:
    """``edit`` the selected positions; the input tensor is never modified."""
    if positions is None:
        return edit(resid)
    if position_ids is None:
        position_ids = torch.arange(resid.shape[1], device=resid.device).expand(resid.shape[0], -1)
    mask = _mask(position_ids.to(resid.device), positions)
    return torch.where(mask[..., None], edit(resid), resid)


def add_direction(vector: np.ndarray | Tensor, positions: Positions = None) -> Intervention:
    """Intervention adding ``vector`` (a raw residual-space shift) at ``positions`` (None: all)."""
    shift = _as_vector(vector, "vector")

    def intervene(resid: Float[Tensor, "batch tok d_model"], position_ids: Tensor | None = None) -> Tensor:
        _checked(resid, shift)
        return _apply(resid, position_ids, positions, lambda x: x + shift.to(device=resid.device, dtype=resid.dtype))

    return intervene


def project_out(direction: np.ndarray | Tensor, positions: Positions = None) -> Intervention:
    """Intervention ablating ``direction``: ``resid - (resid . u) u`` with ``u`` its unit vector.

    The projection is computed in float32 at least, so bf16/fp16 activations lose no extra precision.
    """
    unit = _as_vector(direction, "direction").to(torch.float64)
    if not unit.norm() > 0:
        raise ValueError("direction is the zero vector; nothing to project out.")
    unit = unit / unit.norm()

    def intervene(resid: Float[Tensor, "batch tok d_model"], position_ids: Tensor | None = None) -> Tensor:
        _checked(resid, unit)
        work_dtype = torch.promote_types(resid.dtype, torch.float32)
        u = unit.to(device=resid.device, dtype=work_dtype)

        def ablate(x: Tensor) -> Tensor:
            work = x.to(work_dtype)
            return (work - (work @ u)[..., None] * u).to(x.dtype)

        return _apply(resid, position_ids, positions, ablate)

    return intervene


def steer(direction: np.ndarray | Tensor, scale: float, mode: Mode = "add", positions: Positions = None
          ) -> Intervention:
    """The edit of one steering mode along ``direction`` (any length; only its direction counts).

    ``add`` shifts the activation by ``scale`` along the unit direction; ``ablate`` removes its
    component (``scale`` unused); ``ablate_then_add`` sets the component to exactly ``scale``, so every
    token carries the same amount of the concept whatever it carried before.
    """
    unit = _as_vector(direction, "direction").to(torch.float64)
    if not unit.norm() > 0:
        raise ValueError("direction is the zero vector; a steering mode needs a direction.")
    unit = unit / unit.norm()
    if mode == "add":
        return add_direction(scale * unit, positions)
    if mode == "ablate":
        return project_out(unit, positions)
    if mode == "ablate_then_add":
        ablate, shift = project_out(unit, positions), add_direction(scale * unit, positions)

        def clamp(resid: Float[Tensor, "batch tok d_model"], position_ids: Tensor | None = None) -> Tensor:
            if position_ids is None:
                position_ids = torch.arange(resid.shape[1], device=resid.device).expand(resid.shape[0], -1)
            return shift(ablate(resid, position_ids), position_ids)

        return clamp
    raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}.")

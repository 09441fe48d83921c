"""Interventions on a plain Hugging Face model, outside tripwire's backends: torch forward hooks on its
decoder layers, so `model.generate(...)` (or any forward) runs steered. The edits are the same
`fn(act, position_ids) -> act` functions the backends apply, at the same hook points.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from tripwire.activations.backends.base import Intervention
from tripwire.activations.backends.hf import decoder_layers
from tripwire.activations.hooks import HookPoint, hf_module_and_kind, hook_points


@contextmanager
def hf_interventions(model: nn.Module, edits: dict[str, Intervention]) -> Iterator[None]:
    """Hook `edits` into `model` for the duration of the block; all hooks are removed on exit.

    Positions are each token's absolute position as the model itself sees it: the decoder layer's
    `position_ids` argument (which `generate` derives from the attention mask), else the layer's
    `cache_position`, else 0..tok-1.
    """
    _, layers = decoder_layers(model)
    points = hook_points(list(edits), len(layers))
    fns = {hook_points([key], len(layers))[0]: fn for key, fn in edits.items()}
    positions: dict[int, torch.Tensor] = {}
    handles = []
    try:
        for layer in sorted({hp.layer for hp in points}):
            handles.append(layers[layer].register_forward_pre_hook(_positions_hook(layer, positions),
                                                                   with_kwargs=True))
        for hp in points:
            handles.append(_attach(layers[hp.layer], hp, fns[hp], positions))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _positions_hook(layer: int, positions: dict[int, torch.Tensor]) -> Any:
    def hook(_m: nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        pos = kwargs.get("position_ids")
        if pos is None:
            pos = kwargs.get("cache_position")
        if pos is None:
            pos = torch.arange(hidden.shape[1], device=hidden.device)
        positions[layer] = pos.expand(hidden.shape[0], -1) if pos.ndim == 1 or pos.shape[0] == 1 else pos

    return hook


def _attach(layer: nn.Module, hp: HookPoint, fn: Intervention, positions: dict[int, torch.Tensor]) -> Any:
    sub, kind = hf_module_and_kind(hp)
    module = layer.get_submodule(sub) if sub else layer
    if kind == "input":

        def pre_hook(_m: nn.Module, args: tuple, kwargs: dict) -> Any:
            if args:
                return (fn(args[0], positions[hp.layer]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": fn(kwargs["hidden_states"], positions[hp.layer])}

        return module.register_forward_pre_hook(pre_hook, with_kwargs=True)

    def hook(_m: nn.Module, _args: tuple, output: Any) -> Any:
        if isinstance(output, tuple):
            return (fn(output[0], positions[hp.layer]), *output[1:])
        return fn(output, positions[hp.layer])

    return module.register_forward_hook(hook)

"""Plain Hugging Face backend: torch forward hooks on the decoder layers. The fast reference."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tripwire.activations.backends.base import (
    Captured,
    ForwardCall,
    ForwardResult,
    Intervention,
    StopForward,
    last_capture,
)
from tripwire.activations.hooks import HookPoint, hf_module_and_kind
from tripwire.activations.kv_cache import KVCache, cache_argument, returned_cache


def decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """Find the list of decoder layers (`model.layers` for Llama, Qwen2, Gemma, Mistral ...)."""
    for path in ("model.layers", "model.language_model.layers", "transformer.h", "gpt_neox.layers"):
        obj: Any = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return path, obj
    raise ValueError(f"cannot find the decoder layers of {type(model).__name__}; supported: Llama-like models.")


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, tuple) else x


def _replace_first(x: Any, new: torch.Tensor) -> Any:
    return (new, *x[1:]) if isinstance(x, tuple) else new


class HFBackend:
    name = "hf"

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers_path, self.layers = decoder_layers(model)
        self.n_layers = len(self.layers)
        self.cache_arg = cache_argument(model.forward)

    def _module(self, hp: HookPoint) -> tuple[nn.Module, str]:
        sub, kind = hf_module_and_kind(hp)
        module = self.layers[hp.layer]
        return (module.get_submodule(sub) if sub else module), kind

    @torch.inference_mode()
    def run(self, call: ForwardCall) -> ForwardResult:
        captured: dict[HookPoint, torch.Tensor] = {}
        handles = []
        points = sorted(set(call.capture) | set(call.interventions), key=lambda hp: hp.layer)
        for hp in points:
            module, kind = self._module(hp)
            fn = call.interventions.get(hp)
            last = call.stop_after_layer is not None and hp == last_capture(call.capture)
            handles.append(_attach(module, kind, hp, fn, hp in call.capture, last, captured, call))
        try:
            out = self.model(
                input_ids=call.input_ids,
                attention_mask=call.attention_mask,
                position_ids=call.position_ids,
                use_cache=call.use_cache,
                logits_to_keep=call.logits_to_keep,
                **{self.cache_arg: call.past.inner if call.past is not None else None},
            )
        except StopForward:
            return ForwardResult(logits=None, captured=Captured(captured, self.n_layers))
        finally:
            for h in handles:
                h.remove()
        past = KVCache(returned_cache(out, self.cache_arg), call.input_ids.shape[0]) if call.use_cache else None
        return ForwardResult(out.logits, Captured(captured, self.n_layers), past)


def _attach(
    module: nn.Module,
    kind: str,
    hp: HookPoint,
    fn: Intervention | None,
    keep: bool,
    stop: bool,
    captured: dict[HookPoint, torch.Tensor],
    call: ForwardCall,
) -> Any:
    def edit(act: torch.Tensor) -> torch.Tensor:
        if fn is not None:
            act = fn(act, call.position_ids)
        if keep:
            captured[hp] = act.detach().clone()
        return act

    if kind == "input":

        def pre_hook(_m: nn.Module, args: tuple, kwargs: dict) -> Any:
            hidden = args[0] if args else kwargs["hidden_states"]
            new = edit(hidden)
            if stop:
                raise StopForward
            if fn is None:
                return None
            if args:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}

        return module.register_forward_pre_hook(pre_hook, with_kwargs=True)

    def hook(_m: nn.Module, _args: tuple, output: Any) -> Any:
        new = edit(_first(output))
        if stop:
            raise StopForward
        return _replace_first(output, new) if fn is not None else None

    return module.register_forward_hook(hook)

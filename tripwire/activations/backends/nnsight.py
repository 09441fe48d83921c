"""nnsight backend: one `TransformersModel.trace` per forward, envoys in execution order."""

from __future__ import annotations

from typing import Any

import torch

from tripwire.activations.backends.base import Captured, ForwardCall, ForwardResult, last_capture
from tripwire.activations.hooks import HookPoint, execution_order, nnsight_path
from tripwire.activations.kv_cache import KVCache, returned_cache


class NNsightBackend:
    name = "nnsight"

    def __init__(self, lm: Any, layers_path: str, cache_arg: str):
        self.lm = lm
        self.layers_path = layers_path
        self.cache_arg = cache_arg  # see activations.kv_cache.cache_argument
        self.n_layers = int(lm.config.num_hidden_layers)

    def _envoy(self, hp: HookPoint) -> tuple[Any, str]:
        path, kind = nnsight_path(hp, self.layers_path)
        envoy = self.lm
        for part in path.split("."):
            envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
        return envoy, kind

    @torch.inference_mode()
    def run(self, call: ForwardCall) -> ForwardResult:
        points = sorted(set(call.capture) | set(call.interventions), key=execution_order)
        stop_at = last_capture(call.capture) if call.stop_after_layer is not None and call.capture else None
        saved: dict[HookPoint, Any] = {}
        out: Any = None
        with self.lm.trace(
            input_ids=call.input_ids,
            attention_mask=call.attention_mask,
            position_ids=call.position_ids,
            use_cache=call.use_cache,
            logits_to_keep=call.logits_to_keep,
            **{self.cache_arg: call.past.inner if call.past is not None else None},
        ) as tracer:
            for hp in points:
                envoy, kind = self._envoy(hp)
                fn = call.interventions.get(hp)
                if kind == "input":
                    act = envoy.input
                    if fn is not None:
                        act = fn(act, call.position_ids)
                        envoy.input = act
                elif hp.site == "attn_out":  # attention returns (output, weights)
                    act = envoy.output[0]
                    if fn is not None:
                        act = fn(act, call.position_ids)
                        envoy.output = (act, envoy.output[1])
                else:
                    act = envoy.output
                    if fn is not None:
                        act = fn(act, call.position_ids)
                        envoy.output = act
                if hp in call.capture:
                    saved[hp] = act.save()
                if hp == stop_at:
                    tracer.stop()
            if stop_at is None:
                out = self.lm.output.save()
        captured = Captured({hp: _tensor(v).detach().clone() for hp, v in saved.items()}, self.n_layers)
        if out is None:
            return ForwardResult(logits=None, captured=captured)
        past = KVCache(returned_cache(out, self.cache_arg), call.input_ids.shape[0]) if call.use_cache else None
        return ForwardResult(out.logits, captured, past)


def _tensor(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, tuple) else value

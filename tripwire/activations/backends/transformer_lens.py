"""TransformerLens backend: `TransformerBridge` in raw mode (no weight processing), hooks by TL name."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import torch
from packaging.version import Version

from tripwire.activations.backends.base import (
    BackendCompatibilityError,
    Captured,
    ForwardCall,
    ForwardResult,
    StopForward,
    last_capture,
)
from tripwire.activations.hooks import HookPoint, transformer_lens_name
from tripwire.activations.kv_cache import KVCache


def kv_cache_breakage() -> str | None:
    """Why the TransformerLens bridge cannot use a KV cache with the installed versions, or None.

    transformers 5.24 passes the cache to attention modules as `cache`; the bridge's attention (through
    transformer-lens 4.3.0 at least) reads `past_key_values`, so it silently caches nothing and every
    cached step attends to the new token only. Checked by version so a fixed release lifts it.
    """
    tf, tl = importlib.metadata.version("transformers"), importlib.metadata.version("transformer-lens")
    if Version(tf) >= Version("5.24") and Version(tl) <= Version("4.3.0"):
        return (f"the TransformerLens backend cannot decode with a KV cache on transformers {tf} with "
                f"transformer-lens {tl} (its attention does not read transformers 5.24's `cache` argument). "
                "Use backend='hf' or 'nnsight', or install the locked versions (`make install`).")
    return None


class TransformerLensBackend:
    name = "transformer_lens"

    def __init__(self, bridge: Any):
        self.bridge = bridge
        self.cache_breakage = kv_cache_breakage()
        self.n_layers = int(bridge.cfg.n_layers)

    @torch.inference_mode()
    def run(self, call: ForwardCall) -> ForwardResult:
        if call.use_cache and self.cache_breakage:
            raise BackendCompatibilityError(self.cache_breakage)
        captured: dict[HookPoint, torch.Tensor] = {}
        stop_at = last_capture(call.capture) if call.stop_after_layer is not None and call.capture else None
        hooks = []
        for hp in sorted(set(call.capture) | set(call.interventions), key=lambda h: h.layer):
            hooks.append((transformer_lens_name(hp), self._hook(hp, call, captured, hp == stop_at)))
        try:
            with self.bridge.hooks(fwd_hooks=hooks):
                # Token ids, never text: given text the bridge would prepend a second BOS.
                out = self.bridge.forward(
                    call.input_ids,
                    return_type="logits_and_cache" if call.use_cache else "logits",
                    attention_mask=call.attention_mask,
                    position_ids=call.position_ids,
                    past_key_values=call.past.inner if call.past is not None else None,  # the bridge's own API
                    use_cache=call.use_cache,
                )
        except StopForward:
            return ForwardResult(logits=None, captured=Captured(captured, self.n_layers))
        logits, inner = out if call.use_cache else (out, None)
        if call.logits_to_keep:
            logits = logits[:, -call.logits_to_keep :]
        past = KVCache(inner, call.input_ids.shape[0]) if call.use_cache else None
        return ForwardResult(logits, Captured(captured, self.n_layers), past)

    @staticmethod
    def _hook(hp: HookPoint, call: ForwardCall, captured: dict[HookPoint, torch.Tensor], stop: bool) -> Any:
        fn = call.interventions.get(hp)

        def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
            if fn is not None:
                act = fn(act, call.position_ids)
            if hp in call.capture:
                captured[hp] = act.detach().clone()
            if stop:
                raise StopForward
            return act

        return hook

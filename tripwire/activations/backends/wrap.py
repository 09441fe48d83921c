"""One of the three backends around a loaded Hugging Face model (shared by `load_model` and by
`wrap_model`, which takes a model already in memory)."""

from __future__ import annotations

from typing import Any

from tripwire.activations.backends.hf import HFBackend, decoder_layers
from tripwire.activations.backends.nnsight import NNsightBackend
from tripwire.activations.backends.transformer_lens import TransformerLensBackend
from tripwire.activations.kv_cache import cache_argument
from tripwire.activations.load_errors import ModelLoadError


def input_device(model: Any) -> str:
    """Where token ids must go: the input embeddings' device (the first shard under a device map)."""
    return str(model.get_input_embeddings().weight.device)


def wrap_backend(name: str, model: Any, path: str, tokenizer: Any) -> Any:
    """One of the three backends around a loaded (possibly sharded or quantised) Hugging Face model."""

    if name == "hf":
        return HFBackend(model)
    if name == "transformer_lens":
        from transformer_lens.model_bridge import TransformerBridge  # optional dependency, heavy to import

        try:  # the bridge takes the model's placement from the model itself (hf_device_map)
            bridge = TransformerBridge.boot_transformers(path, hf_model=model, tokenizer=tokenizer,
                                                         device=input_device(model), dtype=model.dtype)
        except ValueError as exc:
            raise ModelLoadError(f"the transformer_lens backend cannot take this model: {exc}") from None
        return TransformerLensBackend(bridge)
    from nnsight import TransformersModel  # optional dependency, heavy to import

    lm = TransformersModel(model, tokenizer=tokenizer)
    return NNsightBackend(lm, decoder_layers(model)[0], cache_argument(model.forward))

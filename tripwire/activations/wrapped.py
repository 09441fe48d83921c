"""`load_model(hf_model, tokenizer=...)`: a Hugging Face causal LM the caller already loaded (sharded,
quantised, fine-tuned, patched) behind tripwire's backends, without loading anything twice.

The model is used as it is: its placement, dtype and weights are the caller's, so load options are
refused rather than half-applied. It is switched to eval mode (dropout would make captures random).
With backend="transformer_lens" the bridge also switches the model's attention to eager, in place, and
keeps the module tree; hand it a model no other handle uses. "hf" and "nnsight" only attach hooks
while a forward runs, so those two can share one model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from tripwire.activations.backends.wrap import input_device, wrap_backend
from tripwire.activations.handle import ModelHandle
from tripwire.activations.load_errors import ModelLoadError
from tripwire.activations.source import ModelSource, with_pad_token

_SAMPLES_PER_TENSOR = 1024


def wrap_model(model: Any, backend: str, tokenizer: Any, refused: dict[str, Any]) -> ModelHandle:
    if not _is_causal_lm(model):
        raise ModelLoadError(
            f"load_model got a {type(model).__name__}; pass 'default', a model folder, a Hugging Face id, or a "
            "loaded Hugging Face causal LM (e.g. AutoModelForCausalLM.from_pretrained(...))."
        )
    if refused:
        names = ", ".join(f"{k}=" for k in refused)
        raise ModelLoadError(
            f"{names} cannot apply to a model that is already loaded: its placement, dtype and weights are "
            "yours. Set them when you load it (from_pretrained(..., device_map=..., dtype=..., "
            "quantization_config=...)), or pass the model's folder or id instead of the model."
        )
    source = wrapped_source(model)
    tokenizer = with_pad_token(tokenizer if tokenizer is not None else _own_tokenizer(model))
    model.eval()
    runner = wrap_backend(backend, model, source.path, tokenizer)
    return ModelHandle.assemble(model, source, tokenizer, runner, input_device(model), model.dtype)


def _is_causal_lm(model: Any) -> bool:
    return isinstance(model, torch.nn.Module) and hasattr(model, "config") and hasattr(model, "get_input_embeddings")


def _own_tokenizer(model: Any) -> Any:
    from transformers import AutoTokenizer

    path = str(getattr(model.config, "name_or_path", "") or "")
    try:
        if not path:
            raise OSError("the model has no name_or_path")
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"no tokenizer for the given {type(model).__name__} ({str(exc).splitlines()[0]}); pass "
            "tokenizer=AutoTokenizer.from_pretrained(...) along with the model."
        ) from None


def wrapped_source(model: Any) -> ModelSource:
    """Name from the model's config; fingerprint from its config and a sample of every weight tensor.

    Cheap for 70B (about a thousand values per tensor), and different when the weights differ: a fine-tuned
    or quantised copy of a checkpoint does not pass for the checkpoint, so probes and stores keyed on the
    fingerprint stay apart."""
    path = str(getattr(model.config, "name_or_path", "") or "")
    name = Path(path).name if path and Path(path).is_dir() else path or type(model).__name__
    digest = hashlib.sha256(model.config.to_json_string(use_diff=False).encode())
    for pname, tensor in [*model.named_parameters(), *model.named_buffers()]:
        digest.update(f"{pname}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        if tensor.device.type == "meta" or tensor.numel() == 0:
            continue  # offloaded to disk: its name and shape still count
        flat = tensor.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // _SAMPLES_PER_TENSOR)].to("cpu").contiguous()
        digest.update(sample.view(torch.uint8).numpy().tobytes())
    return ModelSource(spec=f"<loaded {type(model).__name__}>", path=path, name=name,
                       fingerprint=f"loaded:{digest.hexdigest()[:32]}")

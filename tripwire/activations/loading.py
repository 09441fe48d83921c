"""`load_model`: the bundled default, a local folder, a Hugging Face id or an already-loaded model, behind
one of three backends, on one device or sharded over several (`device_map`), optionally quantised."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from tripwire.activations.backends.base import check_backend
from tripwire.activations.backends.wrap import input_device, wrap_backend
from tripwire.activations.handle import ModelHandle
from tripwire.activations.load_errors import ModelLoadError
from tripwire.activations.placement import DeviceMap, Placement, resolve_placement
from tripwire.activations.plan_shapes import is_planning
from tripwire.activations.remote import ndif_api_key, remote_handle
from tripwire.activations.source import ModelSource, load_tokenizer, resolve_source, with_pad_token
from tripwire.activations.wrapped import wrap_model

__all__ = ["ModelLoadError", "ModelSource", "load_model", "resolve_source"]


def pick_device(device: str | None) -> str:
    """The device to load onto; an explicit one is checked here, before anything loads, because torch
    reports a missing CUDA only when weights move (an AssertionError that names no fix)."""
    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ModelLoadError(f"device {device!r} is not a device name; use cpu, cuda or cuda:N.") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available() and is_planning():
            return device  # a dry run plans for the machine the run will use
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"device {device!r} needs CUDA, but this torch ({torch.__version__}) sees no CUDA device; "
                "use device cpu, or leave the device unset to use the best available one."
            )
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise ModelLoadError(
                f"device {device!r} does not exist: this machine has {count} CUDA device(s), "
                f"cuda:0..cuda:{count - 1}; pick one of those."
            )
    return device


def pick_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    """fp32 on CPU (bf16 matmuls are ~6x slower there), bf16 on accelerators."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None:
        return torch.float32 if device == "cpu" else torch.bfloat16
    table = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ModelLoadError(f"unknown dtype {dtype!r}; choose one of {', '.join(table)}.")
    return table[dtype]


def load_hf_model(source: ModelSource, device: str, dtype: torch.dtype, attn_implementation: str,
                  placement: Placement | None = None) -> Any:
    """Weights onto `device`, or, with a device map or quantisation in `placement`, placed by accelerate
    while they load (a sharded or quantised model is never moved afterwards)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    placed: dict[str, Any] = {}
    if placement is not None and placement.device_map is not None:
        placed["device_map"] = placement.device_map
    if placement is not None and placement.quantization is not None:
        placed["quantization_config"] = placement.quantization
    quiet = hf_logging.is_progress_bar_enabled()  # a "Loading weights" bar per load is noise in a CLI run
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(
            source.path, dtype=dtype, attn_implementation=attn_implementation, revision=source.revision, **placed
        )
    except (OSError, ValueError, ImportError) as exc:
        raise ModelLoadError(f"cannot load weights for {source.spec!r}: {str(exc).splitlines()[0]}") from None
    finally:
        if quiet:
            hf_logging.enable_progress_bar()
    if "device_map" not in placed:
        model.to(device)
    model.eval()
    model.config.name_or_path = source.name
    return model


def build_backend(name: str, source: ModelSource, device: str, dtype: torch.dtype, attn: str | None,
                  tokenizer: Any, placement: Placement | None = None) -> tuple[Any, Any]:
    """(backend, hf_model). TransformerLens rewires modules in place, so it always gets its own model."""
    check_backend(name)
    model = load_hf_model(source, device, dtype, "eager" if name == "transformer_lens" else attn or "sdpa",
                          placement)  # the bridge needs eager attention
    return wrap_backend(name, model, source.path, tokenizer), model


def load_model(
    spec: str | Any = "default",
    backend: str = "hf",
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
    *,
    torch_dtype: str | torch.dtype | None = None,
    device_map: DeviceMap | None = None,
    quantization: str | Any | None = None,
    tokenizer: Any = None,
    remote: bool | str = False,
) -> ModelHandle:
    """A `ModelHandle` on one of three backends.

    `spec`: "default" (bundled SmolLM2-135M-Instruct), a local folder, a Hugging Face id, or a Hugging Face
    causal LM already in memory (wrapped as it is: see `tripwire.activations.wrapped`). `device_map`
    ("auto", "balanced", "sequential" or a dict) shards the model over every visible GPU with accelerate;
    `quantization` ("4bit", "8bit" or a transformers quantisation config) loads it with bitsandbytes on a
    GPU. `torch_dtype` is the Hugging Face spelling of `dtype`. `tokenizer` overrides the model's own.
    `remote=True` (or an NDIF host URL) runs forwards on NDIF with the key in NDIF_API_KEY, "local" runs
    the same nnsight trace here (see `tripwire.activations.remote`)."""
    check_backend(backend)
    if torch_dtype is not None and dtype is not None:
        raise ModelLoadError("pass dtype= or torch_dtype= (the same option), not both.")
    dtype = dtype if dtype is not None else torch_dtype
    if not isinstance(spec, str):
        given = {"device": device, "dtype": dtype, "attn_implementation": attn_implementation,
                 "revision": revision, "device_map": device_map, "quantization": quantization,
                 "remote": remote or None}
        return wrap_model(spec, backend, tokenizer, {k: v for k, v in given.items() if v is not None})
    if remote:
        return _remote(spec, backend, revision, tokenizer, remote, {
            "device": device, "dtype": dtype, "attn_implementation": attn_implementation,
            "device_map": device_map, "quantization": quantization})
    dev = pick_device(device) if device is not None or device_map is None else pick_device(None)
    torch_dt = pick_dtype(dtype, "cpu" if dev == "cpu" else "cuda")
    placement = resolve_placement(device, device_map, quantization, torch_dt)
    source = resolve_source(spec, revision)
    if placement.label:
        source = dataclasses.replace(source, fingerprint=f"{source.fingerprint}+{placement.label}")
    tokenizer = with_pad_token(tokenizer) if tokenizer is not None else load_tokenizer(source)
    runner, model = build_backend(backend, source, dev, torch_dt, attn_implementation, tokenizer, placement)
    device_out = input_device(model) if placement.device_map is not None else dev
    return ModelHandle.assemble(model, source, tokenizer, runner, device_out, torch_dt)


def _remote(spec: str, backend: str, revision: str | None, tokenizer: Any, remote: bool | str,
            given: dict[str, Any]) -> ModelHandle:
    if backend != "nnsight":
        raise ModelLoadError(f"remote={remote!r} runs through nnsight; pass backend='nnsight' (not {backend!r}).")
    if isinstance(remote, str) and remote != "local" and not remote.startswith(("http://", "https://")):
        raise ModelLoadError(f"remote={remote!r} is neither True, 'local' nor an NDIF host URL (https://...).")
    local_ok = ("device", "dtype", "attn_implementation") if remote == "local" else ()  # the simulation loads here
    placed = [f"{k}=" for k, v in given.items() if v is not None and k not in local_ok]
    if placed:
        raise ModelLoadError(f"{', '.join(placed)} cannot apply to a model NDIF runs (NDIF places and casts "
                             "it); drop them, or load the model here without remote=.")
    if remote != "local":
        ndif_api_key()  # before any download: a missing key is the cheapest thing to find
    source = resolve_source(spec, revision)
    tokenizer = with_pad_token(tokenizer) if tokenizer is not None else load_tokenizer(source)
    model = None
    if remote == "local":
        dev = pick_device(given["device"])
        model = load_hf_model(source, dev, pick_dtype(given["dtype"], dev), given["attn_implementation"] or "sdpa")
    return remote_handle(source, tokenizer, remote, model)

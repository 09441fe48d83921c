"""`load_model`: the bundled default, a local folder, a Hugging Face id or an already-loaded model, behind
one of three backends, on one device or sharded over several (`device_map`), optionally quantised."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tripwire.activations.backends.base import check_backend
from tripwire.activations.default_model import DEFAULT_MODEL_NAME, prepare_default_model, read_marker
from tripwire.activations.load_errors import ModelLoadError
from tripwire.activations.placement import DeviceMap, Placement, resolve_placement

if TYPE_CHECKING:
    from tripwire.activations.handle import ModelHandle

__all__ = ["ModelLoadError", "ModelSource", "load_model"]


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from, resolved once; `fingerprint` is cheap even for 70B or remote models."""

    spec: str
    path: str  # local folder or hub id
    name: str
    fingerprint: str
    revision: str | None = None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def resolve_source(spec: str, revision: str | None = None) -> ModelSource:
    if spec == "default":
        folder = prepare_default_model()
        default_marker = read_marker(folder) or {}
        return ModelSource(spec, str(folder), DEFAULT_MODEL_NAME, default_marker.get("fingerprint", "default"))
    local = Path(spec).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise ModelLoadError(f"{local} is a folder but has no config.json; point at a Hugging Face model folder.")
        marker = read_marker(local)
        name = marker["name"] if marker else local.name
        fingerprint = marker["fingerprint"] if marker else _folder_fingerprint(local)
        return ModelSource(spec, str(local), name, fingerprint)
    if local.exists() or spec.startswith((".", "/", "~")):
        raise ModelLoadError(f"{spec!r} is not a model folder. Use 'default', a local folder, or a Hugging Face id.")
    return _hub_source(spec, revision)


def _hub_source(model_id: str, revision: str | None) -> ModelSource:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_id, revision=revision)
    except Exception as exc:  # hub errors are long; keep the one line that matters
        if _offline() or "offline" in str(exc).lower() or "connect" in str(exc).lower():
            raise ModelLoadError(
                f"cannot load {model_id!r}: no network access to the Hugging Face hub (offline) and it is "
                f"not in the local cache. Download it on a machine with access "
                f"(`hf download {model_id} --local-dir DIR`) and pass the local folder, "
                f"or use 'default' for the bundled model."
            ) from None
        raise ModelLoadError(f"cannot load {model_id!r} from the Hugging Face hub: {exc}".splitlines()[0]) from None
    sha = revision or getattr(config, "_commit_hash", None) or "unknown-revision"
    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()
    return ModelSource(model_id, model_id, model_id, f"hf:{model_id}@{sha}:config-{digest[:16]}", revision)


def _folder_fingerprint(folder: Path) -> str:
    """Config + for each weight file its name, size and first/last MiB: changes when weights change,
    without reading 140 GB."""
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) + sorted(folder.glob("*.gguf")):
        size = f.stat().st_size
        digest.update(f"{f.name}:{size}".encode())
        with f.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    return f"local:{digest.hexdigest()[:32]}"


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
        from tripwire.activations.plan_shapes import is_planning

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


def input_device(model: Any) -> str:
    """Where token ids must go: the input embeddings' device (the first shard under a device map)."""
    return str(model.get_input_embeddings().weight.device)


@dataclass(frozen=True)
class ModelShape:
    """What planning a run needs from a model, read from its config alone: no weights are loaded."""

    n_layers: int
    d_model: int
    n_params: int  # estimated from the config's sizes, for rough cost estimates only


def model_shape(source: ModelSource) -> ModelShape:
    """Layers and width as `load_model` reports them, and an estimated parameter count, in milliseconds
    even for a 70B model (a dry run must not pay for loading weights)."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(source.path, revision=source.revision)
    return ModelShape(int(cfg.num_hidden_layers), int(cfg.hidden_size), _estimated_params(cfg))


def _estimated_params(cfg: Any) -> int:
    """Embeddings plus, per layer, attention (grouped-query aware) and a gated MLP: the decoder layout of
    Llama, Qwen, Mistral and Gemma. Norms and biases are left out (well under 1%)."""
    d, heads = int(cfg.hidden_size), int(getattr(cfg, "num_attention_heads", 1) or 1)
    head_dim = int(getattr(cfg, "head_dim", None) or d // heads)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    ffn = int(getattr(cfg, "intermediate_size", None) or 4 * d)
    attention = 2 * d * heads * head_dim + 2 * d * kv_heads * head_dim
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    embeddings = int(getattr(cfg, "vocab_size", 0) or 0) * d * (1 if tied else 2)
    return embeddings + int(cfg.num_hidden_layers) * (attention + 3 * d * ffn)


def load_tokenizer(source: ModelSource) -> Any:
    from transformers import AutoTokenizer

    return with_pad_token(AutoTokenizer.from_pretrained(source.path, revision=source.revision))


def with_pad_token(tokenizer: Any) -> Any:
    """Batches are left-padded; a tokenizer without a pad token pads with its end-of-sequence token."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_backend(name: str, source: ModelSource, device: str, dtype: torch.dtype, attn: str | None,
                  tokenizer: Any, placement: Placement | None = None) -> tuple[Any, Any]:
    """(backend, hf_model). TransformerLens rewires modules in place, so it always gets its own model."""
    check_backend(name)
    model = load_hf_model(source, device, dtype, "eager" if name == "transformer_lens" else attn or "sdpa",
                          placement)  # the bridge needs eager attention
    return wrap_backend(name, model, source.path, tokenizer), model


def wrap_backend(name: str, model: Any, path: str, tokenizer: Any) -> Any:
    """One of the three backends around a loaded (possibly sharded or quantised) Hugging Face model."""
    from tripwire.activations.backends.hf import HFBackend, decoder_layers
    from tripwire.activations.kv_cache import cache_argument

    if name == "hf":
        return HFBackend(model)
    if name == "transformer_lens":
        from transformer_lens.model_bridge import TransformerBridge

        from tripwire.activations.backends.transformer_lens import TransformerLensBackend

        try:  # the bridge takes the model's placement from the model itself (hf_device_map)
            bridge = TransformerBridge.boot_transformers(path, hf_model=model, tokenizer=tokenizer,
                                                         device=input_device(model), dtype=model.dtype)
        except ValueError as exc:
            raise ModelLoadError(f"the transformer_lens backend cannot take this model: {exc}") from None
        return TransformerLensBackend(bridge)
    from nnsight import TransformersModel

    from tripwire.activations.backends.nnsight import NNsightBackend

    lm = TransformersModel(model, tokenizer=tokenizer)
    return NNsightBackend(lm, decoder_layers(model)[0], cache_argument(model.forward))


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
    from tripwire.activations.handle import ModelHandle

    check_backend(backend)
    if torch_dtype is not None and dtype is not None:
        raise ModelLoadError("pass dtype= or torch_dtype= (the same option), not both.")
    dtype = dtype if dtype is not None else torch_dtype
    if not isinstance(spec, str):
        from tripwire.activations.wrapped import wrap_model

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
    from tripwire.activations.remote import ndif_api_key, remote_handle

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

"""Where a model's weights come from (`ModelSource`), resolved once, and what can be read without loading
them: its shape for planning and its tokenizer. No weights load here, so a dry run can use it."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tripwire.activations.default_model import DEFAULT_MODEL_NAME, prepare_default_model, read_marker
from tripwire.activations.load_errors import ModelLoadError
from tripwire.activations.organism import is_organism, prepare_organism


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
    if is_organism(spec):  # a shipped organism or an exported adapter folder: merged once into the cache
        folder = prepare_organism(spec)
        organism_marker = read_marker(folder) or {}
        return ModelSource(spec, str(folder), organism_marker.get("name", spec), organism_marker.get("fingerprint", spec))
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

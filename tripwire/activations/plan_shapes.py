"""Plan a paper-scale run on a machine that cannot see the model: the shapes of the models our configs
name, so `--dry-run` prints a plan and an estimate offline.

A dry run needs the model's config (layers, width, parameter count) and a tokenizer (prompt lengths). For a
hub id that is neither reachable nor cached, `plan_source` builds a stand-in folder: tripwire's copy of
the model's public `config.json` values, with the bundled default model's tokenizer counting tokens. The
counts are then a proxy (another BPE vocabulary and chat template: expect tens of percent, not factors),
and the plan says so. A stand-in has no weights: loading it for a real run fails, as it must.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from tripwire.activations.default_model import cache_root, prepare_default_model
from tripwire.activations.load_errors import ModelLoadError
from tripwire.activations.source import resolve_source

_LLAMA3: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu", "vocab_size": 128256,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "attention_bias": False,
    "mlp_bias": False, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009], "head_dim": 128,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
}
_LLAMA3_8B = {**_LLAMA3, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 8}
# Llama 3.2 1B: 64-wide heads, tied embeddings and a 32x RoPE stretch (its public config.json)
_LLAMA32_1B = {**_LLAMA3, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
               "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "tie_word_embeddings": True,
               "rope_scaling": {**_LLAMA3["rope_scaling"], "factor": 32.0}}
_LLAMA3_70B = {**_LLAMA3, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
               "num_attention_heads": 64, "num_key_value_heads": 8}

# Public config.json values of the models tripwire's configs name, and of the 1B that benchmarks/gpu_check.py
# builds random stand-ins from (facts, not weights).
PLAN_SHAPES: dict[str, dict[str, Any]] = {
    "meta-llama/Llama-3.2-1B-Instruct": _LLAMA32_1B,
    "meta-llama/Llama-3.1-8B-Instruct": _LLAMA3_8B,
    "meta-llama/Llama-3.1-70B-Instruct": _LLAMA3_70B,
    "meta-llama/Llama-3.3-70B-Instruct": _LLAMA3_70B,
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")
STAND_IN_NOTE = ("offline stand-in for {spec}: its config.json values (tripwire's copy), tokens counted with the "
                 "bundled default model's tokenizer (a proxy: another vocabulary and chat template)")


# A dry run plans for the machine the run will use, which may have GPUs this one lacks: with no GPU here,
# a CUDA stage's ETA assumes one H100-class GPU (989 TFLOP/s dense bf16) at these shares of its peak.
ASSUMED_GPU_PEAK_FLOPS = 989e12
ASSUMED_PREFILL_SHARE, ASSUMED_DECODE_SHARE = 0.35, 0.05
ASSUMED_GPU_NOTE = ("no GPU on this machine: CUDA ETAs assume one H100-class GPU at 35% of 989 TFLOP/s in prefill "
                    "and 5% in decode (an assumption, not a measurement)")
REMOTE_NOTE = ("remote: the forwards run on NDIF's GPUs, planned here as one CUDA device; queueing and one round "
               "trip per batch are not counted")
_PLANNING: ContextVar[bool] = ContextVar("tripwire_planning", default=False)


@contextmanager
def planning() -> Iterator[None]:
    """Inside, a CUDA device this machine lacks is accepted (`pick_device`): a dry run only plans."""
    token = _PLANNING.set(True)
    try:
        yield
    finally:
        _PLANNING.reset(token)


def is_planning() -> bool:
    return _PLANNING.get()


def assumed_gpu_rate(rows: int) -> float:
    """FLOP/s a planned CUDA stage is assumed to reach with no GPU here to measure: prefill-sized matmuls
    (>= 256 rows) at the prefill share, decode-sized ones at the decode share."""
    return ASSUMED_GPU_PEAK_FLOPS * (ASSUMED_PREFILL_SHARE if rows >= 256 else ASSUMED_DECODE_SHARE)


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "--", spec)


def stand_in_folder(spec: str, root: Path | None = None) -> Path:
    """A folder holding `spec`'s config.json and the default model's tokenizer (built once, then reused)."""
    if spec not in PLAN_SHAPES:
        raise ModelLoadError(f"tripwire has no stored shape for {spec!r} to plan with offline (it has: "
                             f"{', '.join(PLAN_SHAPES)}); download the model's config and tokenizer "
                             f"(`hf download {spec} config.json tokenizer.json tokenizer_config.json --local-dir DIR`) "
                             "and set `model:` to DIR")
    folder = (root or cache_root() / "plan-shapes") / _slug(spec)
    if folder.is_symlink() or (folder.exists() and not (folder / "stand_in.json").is_file()):
        raise ModelLoadError(f"{folder} exists and is not a tripwire stand-in; move it away or set "
                             "TRIPWIRE_CACHE to another folder")
    config = json.dumps(PLAN_SHAPES[spec], indent=1, sort_keys=True)
    if (folder / "config.json").is_file() and (folder / "config.json").read_text() == config:
        return folder
    default = prepare_default_model(progress=False)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))  # a new folder of our own
    for name in TOKENIZER_FILES:
        if (default / name).is_file():
            shutil.copyfile(default / name, tmp / name)
    (tmp / "config.json").write_text(config)
    (tmp / "stand_in.json").write_text(json.dumps({"stands_in_for": spec, "weights": None}))
    if folder.exists():
        shutil.rmtree(folder)  # an outdated stand-in of ours (checked above: stand_in.json, not a link)
    tmp.rename(folder)
    return folder


def plan_model(spec: str, root: Path | None = None) -> tuple[str, str | None]:
    """The model spec a dry run should plan with, and a note when it is a stand-in: `spec` itself when it
    resolves (default, a folder, a reachable or cached hub id), else the offline stand-in."""
    try:
        resolve_source(spec)
        return spec, None
    except ModelLoadError:
        if spec not in PLAN_SHAPES:
            raise
    return str(stand_in_folder(spec, root)), STAND_IN_NOTE.format(spec=spec)

"""The only module that imports vLLM: start an engine from `VLLMSettings` and generate with capture on.

vLLM and vllm-lens are imported when a run starts, never at import time, so tripwire installs and
tests without them; a missing one is a `VLLMNotInstalledError` saying how to install it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tripwire.activations.vllm_backend.records import Generate
from tripwire.activations.vllm_backend.settings import VLLMSettings
from tripwire.errors import TripwireError

INSTALL = "pip install -e '.[vllm]'"


class VLLMNotInstalledError(TripwireError, ImportError):
    """vLLM or vllm-lens is missing; the message says how to install them."""


def require_vllm(ray: bool = False) -> Any:
    """The `vllm` module, after checking that vllm-lens (the capture plugin) is there and enabled, and Ray
    when the engine is to use it."""
    if sys.version_info < (3, 12):
        raise VLLMNotInstalledError(
            f"the vLLM backend needs Python >= 3.12 (vllm-lens supports no older one); this is "
            f"{sys.version.split()[0]}. Make a Python 3.12 environment on the GPU machine and run {INSTALL} there")
    missing = [name for name in ("vllm", "vllm_lens", *(("ray",) if ray else ())) if not _importable(name)]
    if missing:
        raise VLLMNotInstalledError(
            f"the vLLM backend needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed. On a Linux machine with CUDA GPUs: {INSTALL} (installs vllm-lens, the vLLM it pins, "
            "and Ray for several nodes)")
    if os.environ.get("VLLM_LENS_DISABLE", "").strip() not in ("", "0"):
        raise VLLMNotInstalledError("VLLM_LENS_DISABLE is set, which turns off the vllm-lens plugin that captures "
                                    "activations; unset it for tripwire rollouts")
    import vllm  # optional dependency (Linux + CUDA only), checked above

    return vllm


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def start_engine(settings: VLLMSettings, model: str, revision: str | None, seed: int) -> Any:
    """A `vllm.LLM` over tp x pp GPUs. With Ray, `ray_address` goes to RAY_ADDRESS: vLLM joins the cluster
    from its engine-core process, which inherits the environment (a `ray.init` here would not reach it).
    vllm-lens switches CUDA graphs off (its hooks must fire) and prefix caching off for captured
    requests (a cached token would have no activation)."""
    vllm = require_vllm(ray=settings.distributed_backend == "ray")
    if settings.distributed_backend == "ray" and settings.ray_address is not None:
        os.environ["RAY_ADDRESS"] = settings.ray_address
    return vllm.LLM(**settings.engine_kwargs(model, revision, seed))


def generator(llm: Any, progress: bool = True) -> Generate:
    """`records.Generate` over an engine: builds each request's `vllm.SamplingParams` and keeps order."""
    from vllm import SamplingParams  # optional dependency (Linux + CUDA only)

    def generate(prompts: list[dict[str, list[int]]], sampling: list[dict[str, Any]]) -> list[Any]:
        # a fresh extra_args per request: vllm-lens pops its own keys from it
        params = [SamplingParams(**{**kw, "extra_args": dict(kw.get("extra_args") or {})}) for kw in sampling]
        return list(llm.generate(prompts, params, use_tqdm=progress))

    return generate

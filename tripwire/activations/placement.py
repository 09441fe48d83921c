"""Where and how weights are held: `device_map` sharding and bitsandbytes quantisation for `load_model`.

Everything here is checked before any weights are read, so a wrong option costs milliseconds, not the
minutes a 70B load takes. The bitsandbytes config is built only when quantisation is asked for.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import torch

from tripwire.activations.load_errors import ModelLoadError

DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
DeviceMap = str | dict[str, int | str]


@dataclass(frozen=True)
class Placement:
    """Resolved load options: the device inputs go to (or None: where the embeddings land), the
    accelerate device map (None: load then `.to(device)`), and a quantisation config or None."""

    device: str | None
    device_map: DeviceMap | None
    quantization: Any | None  # a transformers QuantizationConfigMixin
    label: str | None  # e.g. "bnb-4bit"; part of the model's fingerprint, since activations change


def check_device_map(device_map: DeviceMap, device: str | None) -> DeviceMap:
    if device is not None:
        raise ModelLoadError(
            f"pass either device={device!r} or device_map={device_map!r}, not both: a device map places "
            "every layer itself. Drop device=, or drop device_map= to load onto one device."
        )
    if isinstance(device_map, str) and device_map not in DEVICE_MAP_STRATEGIES:
        raise ModelLoadError(
            f"unknown device_map {device_map!r}; use one of {', '.join(DEVICE_MAP_STRATEGIES)}, or a dict "
            "from module name to device (e.g. {'model.layers.0': 0, 'lm_head': 1})."
        )
    if not isinstance(device_map, (str, dict)):
        raise ModelLoadError(f"device_map must be a string or a dict, not {type(device_map).__name__}.")
    if importlib.util.find_spec("accelerate") is None:
        raise ModelLoadError("device_map needs the `accelerate` package: pip install accelerate.")
    return device_map


def quantization_config(quantization: str | Any, dtype: torch.dtype) -> tuple[Any, str]:
    """(transformers quantisation config, label). "4bit" is NF4 with `dtype` as the compute dtype (the
    QLoRA recipe); "8bit" is LLM.int8(). A ready-made config (e.g. `BitsAndBytesConfig(...)`) is used as
    it is."""
    from transformers import BitsAndBytesConfig
    from transformers.utils.quantization_config import QuantizationConfigMixin

    if isinstance(quantization, QuantizationConfigMixin):
        method = str(getattr(quantization.quant_method, "value", quantization.quant_method))
        bits = "4bit" if getattr(quantization, "load_in_4bit", False) else "8bit" if getattr(
            quantization, "load_in_8bit", False) else ""
        return quantization, "-".join(p for p in (method, bits) if p)
    if quantization == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
                                  bnb_4bit_use_double_quant=True), "bitsandbytes-4bit"
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True), "bitsandbytes-8bit"
    raise ModelLoadError(
        f"unknown quantization {quantization!r}; use '4bit' (NF4), '8bit' (LLM.int8), a transformers "
        "quantisation config such as BitsAndBytesConfig(...), or None for full precision."
    )


def _needs_bitsandbytes(config: Any) -> bool:
    return str(getattr(config.quant_method, "value", config.quant_method)) == "bitsandbytes"


def resolve_placement(device: str | None, device_map: DeviceMap | None, quantization: str | Any | None,
                      dtype: torch.dtype, cuda_available: bool | None = None) -> Placement:
    """Check the options together; `cuda_available` defaults to what torch sees (a parameter so the
    CPU refusal can be shown on a GPU machine too)."""
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if device_map is not None:
        device_map = check_device_map(device_map, device)
    if quantization is None:
        return Placement(device, device_map, None, None)
    config, label = quantization_config(quantization, dtype)
    asked = repr(quantization) if isinstance(quantization, str) else f"<{type(quantization).__name__}: {label}>"
    if _needs_bitsandbytes(config):
        on_cpu = (device is not None and torch.device(device).type == "cpu") or not cuda
        if on_cpu:
            raise ModelLoadError(
                f"quantization={asked} uses bitsandbytes, which needs a CUDA GPU, and this load would "
                "run on the CPU. On a CPU drop quantization= (and use dtype='float32'); on a GPU machine "
                "install a CUDA build of torch and `pip install bitsandbytes`."
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ModelLoadError(f"quantization={asked} needs the `bitsandbytes` package: "
                                 "pip install bitsandbytes.")
    if device_map is None:  # quantised weights cannot be moved after loading: place them while loading
        device_map = {"": device or "cuda:0"}
    return Placement(device, device_map, config, label)

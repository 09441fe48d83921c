"""The vLLM engine settings of a rollout, and every check that needs no GPU and no `import vllm`.

Why strict: a 70B engine takes minutes to start on eight GPUs, and vLLM reports a wrong option (a
tensor-parallel size that does not divide the heads, a context too short for the prompts) only then,
or mid-run. So unknown fields are refused and each rule is checked here, from the settings and the
model's config.json alone; every message names the field and says what to set instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tripwire.activations.hooks import HookPoint
from tripwire.errors import TripwireError

# bytes per parameter of the weights, for the GPU count of a dry run (4-bit formats carry scales)
WEIGHT_BYTES = {"auto": 2.0, "bfloat16": 2.0, "float16": 2.0, "float32": 4.0, "fp8": 1.0, "awq": 0.56,
                "gptq": 0.56, "compressed-tensors": 1.0}


class VLLMConfigError(TripwireError, ValueError):
    """vLLM settings that cannot work; the message names the field and the fix."""


class VLLMSettings(BaseModel):
    """How to run the engine. `tensor_parallel_size` shards each layer over the GPUs of one node,
    `pipeline_parallel_size` splits the layers over nodes (Ray), so the engine uses tp x pp GPUs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tensor_parallel_size: int = Field(1, ge=1, le=64)
    pipeline_parallel_size: int = Field(1, ge=1, le=64)
    distributed_backend: Literal["mp", "ray"] = "mp"  # mp: one node; ray: several
    ray_address: str | None = None  # "auto" (the node's running cluster) or "host:6379"
    gpus_per_node: int = Field(8, ge=1, le=64)
    gpu_memory_utilization: float = Field(0.90, gt=0.0, lt=1.0)
    max_model_len: int | None = Field(None, ge=16)  # None: the model's own context length
    max_num_seqs: int | None = Field(None, ge=1)  # sequences decoded at once (vLLM's default: 256)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # None: whatever the checkpoint declares (vLLM reads its quantization_config); fp8 quantises bf16 weights
    quantization: Literal["fp8", "awq", "gptq", "compressed-tensors"] | None = None
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _together(self) -> VLLMSettings:
        gpus = self.tensor_parallel_size * self.pipeline_parallel_size
        if self.ray_address is not None and self.distributed_backend != "ray":
            raise ValueError("ray_address is set but distributed_backend is 'mp'; set distributed_backend: ray "
                             "(several nodes), or drop ray_address (one node)")
        if self.tensor_parallel_size > self.gpus_per_node:
            raise ValueError(
                f"tensor_parallel_size {self.tensor_parallel_size} is more than gpus_per_node "
                f"{self.gpus_per_node}: tensor parallelism all-reduces every layer, so it stays inside a node. "
                f"Set tensor_parallel_size: {self.gpus_per_node} and pipeline_parallel_size to the number of nodes")
        if gpus > self.gpus_per_node and self.distributed_backend != "ray":
            raise ValueError(
                f"tensor_parallel_size x pipeline_parallel_size = {gpus} GPUs is more than one node "
                f"(gpus_per_node {self.gpus_per_node}); set distributed_backend: ray and start a Ray cluster "
                "over the nodes (see the module docs of tripwire.activations.vllm_backend)")
        return self

    @property
    def gpus(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def nodes(self) -> int:
        return math.ceil(self.gpus / self.gpus_per_node)

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> VLLMSettings:
        """From a plain mapping (a YAML section): every problem at once, as one `VLLMConfigError`."""
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            lines = [f"vllm.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}".replace("vllm.: ", "vllm: ")
                     for e in exc.errors()]
            raise VLLMConfigError(f"vllm settings have {len(lines)} problem(s):\n  " + "\n  ".join(lines)) from None

    def fingerprint(self, base: str) -> str:
        """The model's fingerprint as this engine runs it: quantised weights are another model (the HF
        path adds its bitsandbytes label the same way); dtype and parallelism are not."""
        return f"{base}+vllm-{self.quantization}" if self.quantization else base

    def engine_kwargs(self, model: str, revision: str | None, seed: int) -> dict[str, Any]:
        """Keyword arguments of `vllm.LLM`, as plain data (what a dry run shows and a test checks)."""
        kwargs: dict[str, Any] = {
            "model": model, "tokenizer": model, "revision": revision, "tokenizer_revision": revision, "seed": seed,
            "dtype": self.dtype,
            "tensor_parallel_size": self.tensor_parallel_size, "pipeline_parallel_size": self.pipeline_parallel_size,
            "distributed_executor_backend": self.distributed_backend if self.gpus > 1 else None,
            "gpu_memory_utilization": self.gpu_memory_utilization, "trust_remote_code": self.trust_remote_code,
        }
        optional = {"max_model_len": self.max_model_len, "max_num_seqs": self.max_num_seqs,
                    "quantization": self.quantization}
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return kwargs


@dataclass(frozen=True)
class EngineFacts:
    """What the checks and the plan need from a model's config.json (no weights)."""

    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    context_length: int
    n_params: int

    @classmethod
    def from_config(cls, cfg: Any, n_params: int) -> EngineFacts:
        d, heads = int(cfg.hidden_size), int(cfg.num_attention_heads)
        return cls(n_layers=int(cfg.num_hidden_layers), d_model=d, n_heads=heads,
                   n_kv_heads=int(getattr(cfg, "num_key_value_heads", None) or heads),
                   head_dim=int(getattr(cfg, "head_dim", None) or d // heads),
                   context_length=int(getattr(cfg, "max_position_embeddings", 0) or 0), n_params=n_params)


def capture_layers(points: Sequence[HookPoint]) -> tuple[list[int], dict[str, int]]:
    """The decoder layers vllm-lens must capture, and for each hook point its row among them.

    vllm-lens records each decoder layer's output, the residual stream after the layer: `resid_post`
    of block L, which is also `resid_pre` of block L + 1. Other sites are not on the residual stream
    between layers, and `resid_pre` of block 0 (the embeddings) is no layer's output."""
    unsupported = [str(hp) for hp in points if hp.site not in ("resid_post", "resid_pre") or
                   (hp.site == "resid_pre" and hp.layer == 0)]
    if unsupported:
        raise VLLMConfigError(
            f"hook_points {unsupported} cannot be captured with vLLM: vllm-lens records the residual stream "
            "between decoder layers (blocks.L.resid_post, or blocks.L.resid_pre for L >= 1). Use those sites, or "
            "run this rollout on the Hugging Face backend (no vllm section)")
    layer_of = {str(hp): hp.layer if hp.site == "resid_post" else hp.layer - 1 for hp in points}
    layers = sorted(set(layer_of.values()))
    return layers, {name: layers.index(layer) for name, layer in layer_of.items()}


def check_fit(settings: VLLMSettings, facts: EngineFacts, longest_sequence: int,
              min_gpus: int | None = None) -> None:
    """Everything vLLM would refuse at start-up or mid-run, from the config alone."""
    problems = []
    tp, pp = settings.tensor_parallel_size, settings.pipeline_parallel_size
    if facts.n_heads % tp:
        fits = [k for k in range(1, settings.gpus_per_node + 1) if facts.n_heads % k == 0]
        problems.append(f"vllm.tensor_parallel_size: {tp} does not divide the model's {facts.n_heads} attention "
                        f"heads; use one of {fits}")
    if pp > facts.n_layers:
        problems.append(f"vllm.pipeline_parallel_size: {pp} stages for {facts.n_layers} layers; use at most "
                        f"{facts.n_layers}")
    length = settings.max_model_len or facts.context_length
    if length and longest_sequence > length:
        problems.append(
            f"vllm.max_model_len: the longest prompt plus sampling.max_new_tokens is {longest_sequence} tokens, "
            f"more than the engine's context of {length}; raise max_model_len to >= {longest_sequence} (the "
            "model's own limit is " f"{facts.context_length}) or lower sampling.max_new_tokens")
    if min_gpus is not None and settings.gpus < min_gpus:
        problems.append(
            f"vllm.tensor_parallel_size x pipeline_parallel_size = {settings.gpus} GPU(s), but the weights "
            f"alone need {min_gpus} (see the dry-run plan); raise them, or set vllm.quantization")
    if problems:
        raise VLLMConfigError("the vllm settings do not fit this model:\n  " + "\n  ".join(problems))

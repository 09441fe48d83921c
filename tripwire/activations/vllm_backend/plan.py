"""What a vLLM rollout will cost, before any GPU is touched: tokens, stored rows, disk, GPUs, time.

The time is a stated assumption, not a measurement: 2 FLOPs per parameter per token, at a fraction
(MFU) of the GPUs' peak, one fraction for prefill (large matmuls, efficient) and one for decode
(memory-bound, and slower here: vllm-lens turns CUDA graphs and prefix caching off and copies every
captured layer to the host each step). Change `Hardware` to your GPUs; the progress bar of a real
run shows the measured rate. GPU memory is counted as weights plus the KV cache of one full-length
sequence; vLLM fills the rest with KV cache for more concurrent sequences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tripwire.activations.positions import PositionPolicy, TokenLayout
from tripwire.activations.vllm_backend.settings import WEIGHT_BYTES, EngineFacts, VLLMSettings

GIB = 1 << 30


@dataclass(frozen=True)
class Hardware:
    """The GPUs a plan assumes. Defaults: H100 80GB SXM, bf16 dense peak 989 TFLOP/s; MFU 35% in prefill
    and 5% in decode are our assumptions for eager-mode vLLM with capture, not measured numbers."""

    gpu_memory_gib: float = 80.0
    peak_tflops: float = 989.0
    prefill_mfu: float = 0.35
    decode_mfu: float = 0.05
    reserved_gib: float = 2.0  # per GPU: CUDA context, activations, NCCL buffers

    def describe(self) -> str:
        return (f"{self.gpu_memory_gib:g} GiB GPUs at {self.peak_tflops:g} TFLOP/s peak, MFU "
                f"{self.prefill_mfu:.0%} prefill / {self.decode_mfu:.0%} decode")


@dataclass(frozen=True)
class VLLMPlan:
    samples: int
    prompt_tokens: int
    max_generated_tokens: int  # every reply running to max_new_tokens: an upper bound
    stored_rows: int  # per hook point, upper bound
    bytes_on_disk: int  # upper bound
    weight_gib: float
    min_gpus: int  # for the weights and one full-length sequence's KV cache
    gpus: int
    nodes: int
    kv_tokens: int  # KV-cache capacity of the configured GPUs, in tokens
    capture_host_gib: float  # host memory vllm-lens holds for one batch's captures, at most
    eta_seconds: float
    assumption: str

    def describe(self) -> str:
        h = self.eta_seconds / 3600
        eta = f"{h:.1f} h" if h >= 1 else f"{self.eta_seconds / 60:.1f} min"
        return "\n".join([
            f"{self.samples:,} samples: {self.prompt_tokens:,} prompt tokens, <= {self.max_generated_tokens:,} "
            "generated tokens",
            f"store: <= {self.stored_rows:,} rows per hook point, <= {self.bytes_on_disk / 1e9:,.1f} GB on disk",
            f"GPUs: weights {self.weight_gib:,.1f} GiB need >= {self.min_gpus}; configured {self.gpus} on "
            f"{self.nodes} node(s), KV cache for ~{self.kv_tokens:,} tokens",
            f"host memory for one batch's captured activations: <= {self.capture_host_gib:,.1f} GiB "
            "(lower batch_size if this is near the node's RAM)",
            f"ETA ~{eta} ({self.assumption})",
        ])


def weight_gib(settings: VLLMSettings, n_params: int) -> float:
    return n_params * WEIGHT_BYTES[settings.quantization or settings.dtype] / GIB


def kv_bytes_per_token(facts: EngineFacts, settings: VLLMSettings) -> int:
    itemsize = 4 if settings.dtype == "float32" else 2
    return 2 * facts.n_layers * facts.n_kv_heads * facts.head_dim * itemsize


def min_gpus(settings: VLLMSettings, facts: EngineFacts, longest_sequence: int, hw: Hardware) -> int:
    usable = hw.gpu_memory_gib * settings.gpu_memory_utilization - hw.reserved_gib
    need = weight_gib(settings, facts.n_params) + kv_bytes_per_token(facts, settings) * longest_sequence / GIB
    return max(1, math.ceil(need / usable)) if usable > 0 else 1 << 30


def stored_rows(policy: PositionPolicy, prompt_lengths: Sequence[int], max_new_tokens: int) -> int:
    """Rows the policy keeps if every reply runs to the limit (no scaffold masked: an upper bound)."""
    per_length: dict[int, int] = {}
    for n in set(prompt_lengths):
        fed = n + max_new_tokens - 1  # the last token has no activation
        per_length[n] = len([p for p in policy.select(TokenLayout(n + max_new_tokens, n)) if p < fed])
    return sum(per_length[n] for n in prompt_lengths)


def plan_vllm(settings: VLLMSettings, facts: EngineFacts, prompt_lengths: Sequence[int], max_new_tokens: int,
              policy: PositionPolicy, hooks: int, capture_layers: int, store_itemsize: int, batch_size: int,
              hw: Hardware | None = None) -> VLLMPlan:
    hw = hw or Hardware()
    prompt, generated = sum(prompt_lengths), len(prompt_lengths) * max_new_tokens
    longest = max(prompt_lengths, default=0) + max_new_tokens
    rows = stored_rows(policy, prompt_lengths, max_new_tokens)
    gpus = settings.gpus
    rate = gpus * hw.peak_tflops * 1e12
    eta = 2 * facts.n_params * (prompt / (rate * hw.prefill_mfu) + generated / (rate * hw.decode_mfu))
    free = gpus * (hw.gpu_memory_gib * settings.gpu_memory_utilization - hw.reserved_gib) * GIB
    kv = int(max(0.0, free - weight_gib(settings, facts.n_params) * GIB) // kv_bytes_per_token(facts, settings))
    act_itemsize = 4 if settings.dtype == "float32" else 2
    host = min(batch_size, len(prompt_lengths)) * longest * capture_layers * facts.d_model * act_itemsize / GIB
    return VLLMPlan(
        samples=len(prompt_lengths), prompt_tokens=prompt, max_generated_tokens=generated, stored_rows=rows,
        bytes_on_disk=rows * hooks * facts.d_model * store_itemsize,
        weight_gib=weight_gib(settings, facts.n_params), min_gpus=min_gpus(settings, facts, longest, hw),
        gpus=gpus, nodes=settings.nodes, kv_tokens=kv, capture_host_gib=host, eta_seconds=eta,
        assumption=f"assumed, not measured: {hw.describe()}, every reply to max_new_tokens",
    )

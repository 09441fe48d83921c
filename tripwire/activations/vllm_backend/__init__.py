"""Paper-scale rollouts on vLLM, with residual-stream capture inside the vLLM workers.

The HF decode loop samples one batch at a time; vLLM schedules thousands of requests continuously
over tensor-parallel GPUs (and pipeline stages on several nodes, through Ray), which is what makes
23,400 samples of ~3,000-token prompts a matter of hours. The records are the HF rollout's: same chat
rendering and prompt ids, same seeds, same record-id scheme (plus a `{"sampler": "vllm"}` variant),
same token layout, classification and position policy, rows in a `ResidualStore`, resumable by id.

Capture mechanism: vllm-lens (UKGovernmentBEIS/vllm-lens), not nnsight's vLLM integration. Why, from
their public APIs and docs:
- vllm-lens asks for activations with plain data per request (`SamplingParams.extra_args =
  {"output_residual_stream": [layers]}`) and returns them on the finished output
  (`output.activations["residual_stream"]`, `[layer, position, d_model]`), one batched RPC per
  `LLM.generate`. nnsight ships a serialised intervention with every request and runs it in the
  worker; with one invoke per prompt and a save per generation step, that is far more machinery per
  token for 23,400 requests, when all we want is to read the residual stream.
- Its positions are exactly tripwire's: the prompt and every generated token but the last (it trims
  the scheduler's extra step), summed over vLLM's fused (hidden, residual) pair, so a capture is the
  true residual stream after a layer, which is our `blocks.L.resid_post`.
- Tensor parallelism (captured once, on TP rank 0) and pipeline parallelism (stages merged in layer
  order) are handled and tested upstream, as are chunked prefill and prefix caching (turned off for
  captured requests); it registers as a vLLM plugin, so `vllm.LLM` itself works unchanged.
Costs we accept: it forces eager mode (no CUDA graphs) and copies captured layers to the host each
step; it needs Python >= 3.12 and pins its vLLM; it captures every position (the position policy is
applied afterwards) and only the residual stream between layers (no attn_out / mlp_out).

Run (see the commands in tripwire.experiments.rollout_vllm): one node with 8 GPUs uses
`tensor_parallel_size: 8`; N nodes start a Ray cluster (`ray start --head` on one, `ray start
--address=HEAD:6379` on the others, the same weights path and environment on each) and set
`distributed_backend: ray`, `ray_address: auto`, `tensor_parallel_size: 8`, `pipeline_parallel_size: N`.
"""

from tripwire.activations.vllm_backend.engine import (
    INSTALL,
    VLLMNotInstalledError,
    generator,
    require_vllm,
    start_engine,
)
from tripwire.activations.vllm_backend.plan import Hardware, VLLMPlan, plan_vllm
from tripwire.activations.vllm_backend.records import (
    VLLMOutputError,
    VLLMRollout,
    generated_row,
    rollout_record,
)
from tripwire.activations.vllm_backend.requests import (
    VLLM_VARIANT,
    VLLMRequest,
    eos_ids,
    vllm_requests,
    vllm_sampling,
)
from tripwire.activations.vllm_backend.settings import (
    EngineFacts,
    VLLMConfigError,
    VLLMSettings,
    capture_layers,
    check_fit,
)

__all__ = [
    "INSTALL", "VLLM_VARIANT", "EngineFacts", "Hardware", "VLLMConfigError", "VLLMNotInstalledError",
    "VLLMOutputError", "VLLMPlan", "VLLMRequest", "VLLMRollout", "VLLMSettings", "capture_layers", "check_fit",
    "eos_ids", "generated_row", "generator", "plan_vllm", "require_vllm", "rollout_record", "start_engine",
    "vllm_requests", "vllm_sampling",
]

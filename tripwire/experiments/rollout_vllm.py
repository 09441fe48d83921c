"""`tripwire rollout` on vLLM: a rollout config plus a `vllm:` section, checked and planned without a GPU.

Commands (the GPU machine needs Python >= 3.12 and `pip install -e '.[vllm]'`):

  one node, 8 GPUs (vllm: {tensor_parallel_size: 8}):
    python -m tripwire.experiments.rollout_vllm tripwire/experiments/configs/rollouts/vllm_70b.yaml --dry-run   # plan, no GPU needed
    python -m tripwire.experiments.rollout_vllm tripwire/experiments/configs/rollouts/vllm_70b.yaml             # rerun to resume

  N nodes, 8 GPUs each (vllm: {distributed_backend: ray, ray_address: auto, tensor_parallel_size: 8,
  pipeline_parallel_size: N}); the same environment and the same model path on every node:
    head:    ray start --head --port=6379
    others:  ray start --address=HEAD_IP:6379
    head:    python -m tripwire.experiments.rollout_vllm tripwire/experiments/configs/rollouts/vllm_70b.yaml

Checked before anything slow, in order: the store path, the vllm section and the refused sections
(monitor, steer, device, dtype, backend), the model's config.json (heads vs tensor parallelism, layers
vs pipeline stages, context vs longest prompt + max_new_tokens, hook sites vllm-lens can capture, GPU
memory for the weights), the tokenizer. Only then is vLLM imported, the store's writer lock taken (a
second writer is refused before the engine loads) and the engine started.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from tripwire.activations import SamplingParams, StoreMismatchError, hook_points
from tripwire.activations.chat import detect_capabilities
from tripwire.activations.runner import run_batches
from tripwire.activations.source import load_tokenizer, model_shape, resolve_source
from tripwire.activations.store import TORCH_DTYPES, ResidualStore
from tripwire.activations.store_lock import WriterLock
from tripwire.activations.store_types import StoreManifest
from tripwire.activations.vllm_backend import (
    VLLM_VARIANT,
    EngineFacts,
    Hardware,
    VLLMPlan,
    VLLMRollout,
    VLLMSettings,
    capture_layers,
    check_fit,
    eos_ids,
    generator,
    plan_vllm,
    require_vllm,
    start_engine,
    vllm_requests,
)
from tripwire.activations.vllm_backend.plan import min_gpus
from tripwire.experiments.config import RolloutConfig
from tripwire.experiments.rollout_capture import RolloutSummary, check_store_path, conversations, harmful_rate

_REFUSED = {
    "monitor": "the online monitor reads every decode step, which vLLM does not expose; score the stored "
               "rollout with the probes afterwards, or drop the vllm section to roll out on the HF backend",
    "steer": "tripwire does not steer vLLM; drop steer, or drop the vllm section to steer on the HF backend",
    "device": "vLLM places the model itself; drop device and set vllm.tensor_parallel_size",
    "dtype": "set vllm.dtype (auto, bfloat16, float16, float32) instead",
    "backend": "backend chooses an HF-path backend; drop it (the vllm section chooses vLLM)",
}


class VLLMRolloutConfig(RolloutConfig):
    """A rollout config whose `vllm` section runs it on vLLM; `batch_size` is the records per
    `LLM.generate` call and per store commit (hundreds: vLLM schedules within it)."""

    vllm: VLLMSettings = Field(default_factory=VLLMSettings)

    @model_validator(mode="after")
    def _vllm_only(self) -> VLLMRolloutConfig:
        given = {"monitor": self.monitor is not None, "steer": self.steer is not None,
                 "device": self.device is not None, "dtype": self.dtype is not None, "backend": self.backend != "hf"}
        bad = [f"{name}: {_REFUSED[name]}" for name, on in given.items() if on]
        if bad:
            raise ValueError("not available with vllm:\n    " + "\n    ".join(bad))
        return self


def sampling_params(cfg: RolloutConfig) -> SamplingParams:
    """The sampling of `run_rollout`, field for field (it enters the record ids)."""
    return SamplingParams(max_new_tokens=cfg.sampling.max_new_tokens, temperature=cfg.sampling.temperature,
                          top_p=cfg.sampling.top_p, stop=tuple(cfg.sampling.stop))


def run_rollout_vllm(cfg: VLLMRolloutConfig, dry_run: bool = False, progress: bool = True,
                     hardware: Hardware | None = None) -> tuple[VLLMPlan, RolloutSummary | None]:
    from transformers import AutoConfig

    existing = check_store_path(cfg)
    convs = conversations(cfg)
    sampling = sampling_params(cfg)
    source = resolve_source(cfg.model)
    config = AutoConfig.from_pretrained(source.path, revision=source.revision,
                                        trust_remote_code=cfg.vllm.trust_remote_code)
    facts = EngineFacts.from_config(config, model_shape(source).n_params)
    points = hook_points(cfg.hook_points, facts.n_layers)
    layers, hook_rows = capture_layers(points)
    fingerprint = cfg.vllm.fingerprint(source.fingerprint)
    hooks = [str(hp) for hp in points]
    if existing is not None:
        wanted = StoreManifest(model_name=source.name, model_fingerprint=fingerprint, hook_points=hooks,
                               d_model=facts.d_model, dtype=cfg.store_dtype, created_at="", tripwire_version="")
        if diffs := existing.manifest.mismatches(wanted):
            raise StoreMismatchError(f"store {cfg.store} holds different activations ({'; '.join(diffs)}); write "
                                     "these activations to a new store path")
    tokenizer = load_tokenizer(source)
    items = vllm_requests(tokenizer, detect_capabilities(tokenizer), fingerprint, convs, cfg.samples, sampling,
                          sorted(eos_ids(tokenizer, source.path, source.revision)), layers, cfg.base_seed)
    lengths = [len(it.payload.item.prompt_ids) for it in items]
    hw = hardware or Hardware()
    longest = max(lengths) + sampling.max_new_tokens
    check_fit(cfg.vllm, facts, longest, min_gpus(cfg.vllm, facts, longest, hw))
    policy = cfg.positions.build()
    plan = plan_vllm(cfg.vllm, facts, lengths, sampling.max_new_tokens, policy, len(hooks), len(layers),
                     TORCH_DTYPES[cfg.store_dtype].itemsize, cfg.batch_size, hw)
    if dry_run:
        return plan, None
    require_vllm(ray=cfg.vllm.distributed_backend == "ray")  # not installed: said before any store exists
    with WriterLock(cfg.store).hold() as lock:  # before the engine loads: a second writer is refused at once
        llm = start_engine(cfg.vllm, source.path, source.revision, cfg.base_seed)
        store = ResidualStore.create(cfg.store, model_name=source.name, model_fingerprint=fingerprint,
                                     hook_points=hooks, d_model=facts.d_model, dtype=cfg.store_dtype, lock=lock)
        compute = VLLMRollout(tokenizer, generator(llm, progress=False), hook_rows, sampling, policy, VLLM_VARIANT)
        summary = run_batches(store, items, cfg.batch_size, compute, progress=progress)
    return plan, RolloutSummary(summary, harmful_rate(store, [it.record_id for it in items]))


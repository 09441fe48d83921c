"""Config-driven runs: rollouts and teacher-forced capture into a `ResidualStore`, with a dry run that
says what a run will cost before it starts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activations import SamplingParams, load_model
from activations.capture import TeacherForcedCapture, capture_items
from activations.handle import ModelHandle
from activations.rollout import Rollout, rollout_items
from activations.runner import RunSummary, WorkItem, run_batches
from activations.store import ResidualStore
from experiments.configs import CaptureConfig, RolloutConfig, RunConfig
from scenarios.spec import Conversation, Message, Transcript


@dataclass(frozen=True)
class Plan:
    sequences: int
    tokens: int
    stored_rows: int
    bytes_on_disk: int
    eta_seconds: float

    def describe(self) -> str:
        return (f"{self.sequences} sequences, {self.tokens:,} tokens, ~{self.stored_rows:,} stored rows per hook "
                f"point, ~{_human(self.bytes_on_disk)} on disk, ETA ~{self.eta_seconds / 60:.1f} min")


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def _handle(cfg: RunConfig) -> ModelHandle:
    return load_model(cfg.model, backend=cfg.backend, device=cfg.device, dtype=cfg.dtype)


def open_store(cfg: RunConfig, handle: ModelHandle) -> ResidualStore:
    hooks = [str(hp) for hp in handle.hook_points(cfg.hook_points)]
    return ResidualStore.create(cfg.store, model_name=handle.name, model_fingerprint=handle.fingerprint,
                                hook_points=hooks, d_model=handle.d_model, dtype=cfg.store_dtype)


def conversations(cfg: RolloutConfig) -> list[Conversation]:
    from scenarios import grid, parse_condition_id, render

    sel = cfg.scenarios
    if sel.ids:
        specs = [parse_condition_id(i) for i in sel.ids]
    else:
        specs = grid(kinds=tuple(sel.kinds), goal_types=tuple(sel.goal_types), goal_values=tuple(sel.goal_values),
                     urgencies=tuple(sel.urgencies), framings=tuple(sel.framings))
    return [render(spec, seed=seed, length=sel.length) for spec in specs for seed in sel.seeds]


def transcripts(cfg: CaptureConfig) -> list[Transcript]:
    if cfg.dataset is not None:
        from scenarios.datasets import dataset

        found = dataset(cfg.dataset, seed=cfg.dataset_seed)
    else:
        found = load_transcript_file(Path(str(cfg.transcripts)))
    return spread_subset(found, cfg.limit) if cfg.limit else found


def spread_subset(found: list[Transcript], limit: int) -> list[Transcript]:
    """About `limit` transcripts taken round-robin over template families, keeping contrast pairs whole,
    so a quick run still sees every family."""
    by_family: dict[str, dict[str, list[Transcript]]] = {}
    for t in found:
        by_family.setdefault(t.family, {}).setdefault(t.pair_id or t.id, []).append(t)
    queues = [list(units.values()) for units in by_family.values()]
    picked: list[Transcript] = []
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked += queue.pop(0)
    return picked


def load_transcript_file(path: Path) -> list[Transcript]:
    """Exported contrast sets (`tripwire datasets export`) or `{scenario, reply}` lines of any model."""
    first = json.loads(path.read_text().splitlines()[0])
    if "messages" in first:
        from scenarios.datasets import load_jsonl

        return load_jsonl(path)
    from scenarios.am_results import load_reply_jsonl

    out = []
    for i, (conv, reply, meta) in enumerate(load_reply_jsonl(path)):
        out.append(Transcript(id=f"{path.stem}-{i}", dataset="control", messages=tuple(
            Message(m.role, m.content) for m in conv.messages), reply=reply, label=None,
            family=conv.condition_id, condition_id=conv.condition_id, variant="imported", meta=dict(meta)))
    return out


def _eta(handle: ModelHandle, tokens: int, decode_steps: int) -> float:
    """Time one small forward and one cached step here, then scale: a rough but honest estimate."""
    ids = [[handle.pad_id] * 256]
    handle.forward([[handle.pad_id] * 8])  # warm-up: the first call pays one-off costs
    t = time.perf_counter()
    out = handle.forward(ids, use_cache=True)
    prefill = (time.perf_counter() - t) / 256
    t = time.perf_counter()
    handle.forward([[handle.pad_id]], past=out.past)
    step = time.perf_counter() - t
    return tokens * prefill + decode_steps * step


def plan_rollout(cfg: RolloutConfig, handle: ModelHandle, items: list[WorkItem[Any]]) -> Plan:
    hooks = len(handle.hook_points(cfg.hook_points))
    prompt = sum(len(it.payload.prompt_ids) for it in items)
    new = len(items) * cfg.sampling.max_new_tokens
    rows = prompt + new
    steps = -(-len(items) // cfg.batch_size) * cfg.sampling.max_new_tokens
    return Plan(len(items), prompt + new, rows, rows * hooks * handle.d_model * 2, _eta(handle, prompt, steps))


def plan_capture(cfg: CaptureConfig, handle: ModelHandle, items: list[WorkItem[Any]]) -> Plan:
    hooks = len(handle.hook_points(cfg.hook_points))
    policy = cfg.positions.build()
    tokens = sum(it.payload.tokens.n_tokens for it in items)
    rows = sum(len(policy.select(it.payload.tokens)) for it in items)
    distinct_prompts = {tuple(it.payload.tokens.token_ids[: it.payload.tokens.n_prompt_tokens]) for it in items}
    work = sum(len(p) for p in distinct_prompts) + sum(
        it.payload.tokens.n_tokens - it.payload.tokens.n_prompt_tokens for it in items)
    return Plan(len(items), tokens, rows, rows * hooks * handle.d_model * 2, _eta(handle, work, 0))


def run_rollout(cfg: RolloutConfig, dry_run: bool = False, progress: bool = True) -> tuple[Plan, RunSummary | None]:
    handle = _handle(cfg)
    sampling = SamplingParams(max_new_tokens=cfg.sampling.max_new_tokens, temperature=cfg.sampling.temperature,
                              top_p=cfg.sampling.top_p, stop=tuple(cfg.sampling.stop))
    items = rollout_items(handle, conversations(cfg), cfg.samples, sampling, cfg.base_seed)
    plan = plan_rollout(cfg, handle, items)
    if dry_run:
        return plan, None
    store = open_store(cfg, handle)
    compute = Rollout(handle, [str(hp) for hp in handle.hook_points(cfg.hook_points)], sampling,
                      cfg.positions.build())
    return plan, run_batches(store, items, cfg.batch_size, compute, progress=progress)


def run_capture(cfg: CaptureConfig, dry_run: bool = False, progress: bool = True) -> tuple[Plan, RunSummary | None]:
    handle = _handle(cfg)
    items = capture_items(handle, transcripts(cfg))
    plan = plan_capture(cfg, handle, items)
    if dry_run:
        return plan, None
    store = open_store(cfg, handle)
    compute = TeacherForcedCapture(handle, [str(hp) for hp in handle.hook_points(cfg.hook_points)],
                                   cfg.positions.build())
    return plan, run_batches(store, items, cfg.batch_size, compute, progress=progress)

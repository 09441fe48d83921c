"""Config-driven runs: rollouts and teacher-forced capture into a `ResidualStore`, with a dry run that
says what a run will cost before it starts.

Everything that can be checked without the model's weights is checked before they load (~25 s for the
default model, minutes for a large one): first what depends on the inputs alone (the store path, an
existing store's dtype and hook points, the input files, the device), then what needs only the model's
config (layers, width, fingerprint against the store). A dry run stops there: it reads the tokenizer and
config, never the weights. A real run then takes the store's writer lock before the weights load, so a
second writer of the same store is refused at once, not after a load.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tripwire.activations import (
    HookPointError,
    SamplingParams,
    StoreMismatchError,
    StoreWriteError,
    hook_points,
    load_model,
)
from tripwire.activations.capture import TeacherForcedCapture, capture_items
from tripwire.activations.chat import detect_capabilities, render_chat_ids, render_conversation
from tripwire.activations.handle import ModelHandle
from tripwire.activations.layout import TokenizedTranscript, tokenize_transcript
from tripwire.activations.loading import pick_device, pick_dtype
from tripwire.activations.plan_shapes import assumed_gpu_rate
from tripwire.activations.rollout import Rollout, rollout_items
from tripwire.activations.runner import RunSummary, run_batches
from tripwire.activations.source import ModelShape, ModelSource, load_tokenizer, model_shape, resolve_source
from tripwire.activations.store import TORCH_DTYPES, ResidualStore
from tripwire.activations.store_lock import WriterLock
from tripwire.activations.store_types import StoreManifest
from tripwire.errors import UsageError
from tripwire.experiments.config import CaptureConfig, RolloutConfig, RunConfig
from tripwire.experiments.rollout_sections import ModelFacts, RolloutSections
from tripwire.probes.metrics import HarmfulRate
from tripwire.scenarios import grid, parse_condition_id, render
from tripwire.scenarios.am_results import load_reply_jsonl
from tripwire.scenarios.datasets import dataset, load_jsonl
from tripwire.scenarios.datasets.jsonl import TranscriptFormatError, read_jsonl
from tripwire.scenarios.spec import Conversation, Message, Transcript


@dataclass(frozen=True)
class Plan:
    sequences: int
    tokens: int
    stored_rows: int
    bytes_on_disk: int
    eta_seconds: float

    def describe(self) -> str:
        return (f"{self.sequences} sequences, {self.tokens:,} tokens, ~{self.stored_rows:,} stored rows per "
                f"hook point, ~{_human(self.bytes_on_disk)} on disk, ETA ~{self.eta_seconds / 60:.1f} min "
                "(rough: from the parameter count)")


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


@dataclass(frozen=True)
class RolloutSummary:
    run: RunSummary
    harmful: HarmfulRate
    fired: dict[str, int] | None = None  # with a monitor section: per probe, how many samples it fired on

    def describe_monitor(self) -> str | None:
        if self.fired is None:
            return None
        n = self.harmful.samples
        return "tripwire fired on: " + ", ".join(f"{label} {k}/{n} samples" for label, k in self.fired.items())


@dataclass(frozen=True)
class CheckedModel:
    """A model known to fit the run, from its config alone."""

    source: ModelSource
    shape: ModelShape
    hooks: list[str]  # canonical names, as the store records them
    device: str
    dtype: torch.dtype


def _mismatch(path: Path, diffs: list[str]) -> StoreMismatchError:
    return StoreMismatchError(f"store {path} holds different activations ({'; '.join(diffs)}); write these "
                              "activations to a new store path")


def _hooks_without_model(specs: list[str]) -> list[str] | None:
    """Canonical hook names when they do not depend on the layer count (no layer counted from the end),
    else None: those are compared once the model's config is read."""
    try:
        a, b = (hook_points(specs, n) for n in (1 << 20, (1 << 20) + 1))
    except HookPointError:
        return None  # reported with the model's real layer range once its config is read
    return [str(hp) for hp in a] if a == b else None


def check_store_path(cfg: RunConfig) -> ResidualStore | None:
    """Refuse, from the inputs alone, a store this run could not write: a file in its place, a read-only
    directory, an existing store of another dtype or other hook points. Returns the existing store."""
    path = cfg.store
    if path.exists() and not path.is_dir():
        raise StoreWriteError(f"store path {path} is a file, not a store directory; set `store` to a new or "
                              "existing store directory")
    nearest = next(p for p in (path, *path.parents) if p.exists())
    if not nearest.is_dir():
        raise StoreWriteError(f"store {path} cannot be created: {nearest} is a file; set `store` to a path "
                              "inside a directory")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise StoreWriteError(f"store {path} is not writable: {nearest} is read-only for this user; set "
                              f"`store` to a writable path or make {nearest} writable")
    try:
        existing = ResidualStore.open(path)
    except FileNotFoundError:
        return None  # no store yet: created once the model has loaded
    diffs = []
    if existing.manifest.dtype != cfg.store_dtype:
        diffs.append(f"dtype: store has {existing.manifest.dtype!r}, got {cfg.store_dtype!r}")
    hooks = _hooks_without_model(cfg.hook_points)
    if hooks is not None and hooks != existing.manifest.hook_points:
        diffs.append(f"hook_points: store has {existing.manifest.hook_points!r}, got {hooks!r}")
    if diffs:
        raise _mismatch(path, diffs)
    return existing


def check_model(cfg: RunConfig, existing: ResidualStore | None) -> CheckedModel:
    """The device, then the model's config: hook points in range, and the same model, width and hook
    points as an existing store. Reads config.json only."""
    device = pick_device(cfg.device)
    dtype = pick_dtype(cfg.dtype, device)
    source = resolve_source(cfg.model)
    shape = model_shape(source)
    hooks = [str(hp) for hp in hook_points(cfg.hook_points, shape.n_layers)]
    if existing is not None:
        wanted = StoreManifest(model_name=source.name, model_fingerprint=source.fingerprint,
                               hook_points=hooks, d_model=shape.d_model, dtype=cfg.store_dtype, created_at="",
                               tripwire_version="")
        if diffs := existing.manifest.mismatches(wanted):
            raise _mismatch(cfg.store, diffs)
    return CheckedModel(source, shape, hooks, device, dtype)


def _handle(cfg: RunConfig, model: CheckedModel) -> ModelHandle:
    return load_model(cfg.model, backend=cfg.backend, device=model.device, dtype=cfg.dtype)


def open_store(cfg: RunConfig, handle: ModelHandle, lock: WriterLock | None = None) -> ResidualStore:
    """The run's store; `lock`, taken before the model loaded, is the one its writers write under."""
    hooks = [str(hp) for hp in handle.hook_points(cfg.hook_points)]
    return ResidualStore.create(cfg.store, model_name=handle.name, model_fingerprint=handle.fingerprint,
                                hook_points=hooks, d_model=handle.d_model, dtype=cfg.store_dtype, lock=lock)


def conversations(cfg: RolloutConfig) -> list[Conversation]:
    sel = cfg.scenarios
    if sel.ids:
        specs = [parse_condition_id(i) for i in sel.ids]
    else:
        specs = grid(kinds=tuple(sel.kinds), goal_types=tuple(sel.goal_types), goal_values=tuple(sel.goal_values),
                     urgencies=tuple(sel.urgencies), framings=tuple(sel.framings))
    return [render(spec, seed=seed, length=sel.length) for spec in specs for seed in sel.seeds]


def transcripts(cfg: CaptureConfig) -> list[Transcript]:
    if cfg.dataset is not None:
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


_TRANSCRIPTS_FIX = ("write exported transcripts (tripwire datasets export NAME --out FILE) or "
                    '{"scenario": ..., "reply": ...} lines')


def load_transcript_file(path: Path) -> list[Transcript]:
    """Exported contrast sets (`tripwire datasets export`) or `{scenario, reply}` lines of any model."""
    if not path.is_file():
        raise UsageError(f"transcripts file {path} does not exist or is not a file; {_TRANSCRIPTS_FIX}")
    first = next((row for _, row in read_jsonl(path, TranscriptFormatError, _TRANSCRIPTS_FIX)), None)
    if first is None:
        raise UsageError(f"transcripts file {path} is empty; {_TRANSCRIPTS_FIX}")
    if isinstance(first, dict) and "messages" in first:
        return load_jsonl(path)

    out = []
    for i, (conv, reply, meta) in enumerate(load_reply_jsonl(path)):
        out.append(Transcript(id=f"{path.stem}-{i}", dataset="control", messages=tuple(
            Message(m.role, m.content) for m in conv.messages), reply=reply, label=None,
            family=conv.condition_id, condition_id=conv.condition_id, variant="imported", meta=dict(meta)))
    return out


def capture_layouts(tokenizer: Any, found: Sequence[Transcript]) -> list[TokenizedTranscript]:
    """The token layouts `capture_items` builds, from the tokenizer alone (a dry run has no model): the
    same chat rendering and reply tokenisation, so dry and real plans agree (tests/test_cli_errors.py)."""
    capabilities = detect_capabilities(tokenizer)
    prompts: dict[tuple[tuple[str, str], ...], list[int]] = {}
    out = []
    for t in found:
        key = tuple((str(m.role), m.content) for m in t.messages)
        if key not in prompts:
            prompts[key] = render_chat_ids(tokenizer, capabilities, t.as_dicts(), None, True)
        out.append(tokenize_transcript(tokenizer, prompts[key], [m.content for m in t.messages], t.reply,
                                       tokenizer.eos_token_id).with_action(t.action_span))
    return out


def _matmul_rate(device: str, dtype: torch.dtype, rows: int) -> float:
    """FLOP/s of a rows x 1024 x 4096 matmul on this device: the best of three ~20 ms windows after a
    warm-up, so a moment of contention from other processes does not decide the estimate. A dry run for
    a GPU this machine lacks uses the stated assumption (`plan_shapes.assumed_gpu_rate`)."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        return assumed_gpu_rate(rows)
    a = torch.randn(rows, 1024, device=device, dtype=dtype)
    b = torch.randn(1024, 4096, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    a @ b
    sync()
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 0.02:
            a @ b
            n += 1
        sync()
        best = max(best, 2 * rows * 1024 * 4096 * n / (time.perf_counter() - start))
    return best


def rough_eta(model: CheckedModel, computed_tokens: int, sequence_lengths: Sequence[int],
              decode_steps: int = 0, decode_rows: int = 1) -> float:
    """Seconds, without weights or a forward pass: 2 FLOPs per parameter per computed token plus causal
    attention (2 x layers x d_model x length² per sequence), at the matmul rate measured here in the run's
    dtype. Padding, per-step overhead and memory traffic are not counted, so read it as an order of
    magnitude; the progress bar of a real run shows the measured tokens/s."""
    shape = model.shape
    flops = (2 * shape.n_params * computed_tokens
             + 2 * shape.n_layers * shape.d_model * sum(t * t for t in sequence_lengths))
    seconds = flops / _matmul_rate(model.device, model.dtype, 256)
    if decode_steps:
        step = 2 * shape.n_params * decode_rows / _matmul_rate(model.device, model.dtype, decode_rows)
        seconds += decode_steps * step
    return seconds


def _row_bytes(cfg: RunConfig, model: CheckedModel) -> int:
    return len(model.hooks) * model.shape.d_model * TORCH_DTYPES[cfg.store_dtype].itemsize


def plan_rollout(cfg: RolloutConfig, model: CheckedModel, prompt_lengths: Sequence[int]) -> Plan:
    new = cfg.sampling.max_new_tokens
    prompt = sum(prompt_lengths)
    rows = prompt + len(prompt_lengths) * new
    batches = -(-len(prompt_lengths) // cfg.batch_size)
    eta = rough_eta(model, prompt, [n + new for n in prompt_lengths], batches * new,
                    min(cfg.batch_size, len(prompt_lengths)) or 1)
    return Plan(len(prompt_lengths), rows, rows, rows * _row_bytes(cfg, model), eta)


def plan_capture(cfg: CaptureConfig, model: CheckedModel, layouts: Sequence[TokenizedTranscript]) -> Plan:
    policy = cfg.positions.build()
    tokens = sum(t.n_tokens for t in layouts)
    rows = sum(len(policy.select(t)) for t in layouts)
    distinct_prompts = {tuple(t.token_ids[: t.n_prompt_tokens]) for t in layouts}
    work = sum(len(p) for p in distinct_prompts) + sum(t.n_tokens - t.n_prompt_tokens for t in layouts)
    eta = rough_eta(model, work, [t.n_tokens for t in layouts])
    return Plan(len(layouts), tokens, rows, rows * _row_bytes(cfg, model), eta)


def harmful_rate(store: ResidualStore, record_ids: Sequence[str]) -> HarmfulRate:
    """Over the run's own samples (a rerun counts those stored before), not the whole store."""
    wanted = set(record_ids)
    records = store.records(lambda r: r.record_id in wanted)
    return HarmfulRate(sum(r.labels.get("harmful", 0) for r in records), len(records))


def fired_counts(store: ResidualStore, record_ids: Sequence[str]) -> dict[str, int]:
    """Per monitor probe, how many of the run's samples it fired on (from the records' meta)."""
    wanted = set(record_ids)
    counts: dict[str, int] = {}
    for r in store.records(lambda r: r.record_id in wanted):
        for label, token in r.meta["monitor"]["fired_at_token"].items():
            counts[label] = counts.get(label, 0) + (token is not None)
    return counts


def run_rollout(cfg: RolloutConfig, dry_run: bool = False,
                progress: bool = True) -> tuple[Plan, RolloutSummary | None]:
    existing = check_store_path(cfg)
    convs = conversations(cfg)
    sampling = SamplingParams(max_new_tokens=cfg.sampling.max_new_tokens, temperature=cfg.sampling.temperature,
                              top_p=cfg.sampling.top_p, stop=tuple(cfg.sampling.stop))
    model = check_model(cfg, existing)
    sections = RolloutSections.load(cfg, ModelFacts(model.source.name, model.source.fingerprint,
                                                    model.shape.d_model, model.shape.n_layers))
    if dry_run:
        tokenizer = load_tokenizer(model.source)
        capabilities = detect_capabilities(tokenizer)
        lengths = [len(render_conversation(tokenizer, capabilities, c).token_ids) for c in convs]
        return plan_rollout(cfg, model, [n for n in lengths for _ in range(cfg.samples)]), None
    with WriterLock(cfg.store).hold() as lock:  # before the weights load: a second writer is refused at once
        handle = _handle(cfg, model)
        items = rollout_items(handle, convs, cfg.samples, sampling, cfg.base_seed, sections.variant())
        plan = plan_rollout(cfg, model, [len(it.payload.prompt_ids) for it in items])
        store = open_store(cfg, handle, lock)
        with sections.running(handle) as (watcher, watch, row_meta):
            compute = Rollout(handle, model.hooks, sampling, cfg.positions.build(), watcher, watch, row_meta)
            summary = run_batches(store, items, cfg.batch_size, compute, progress=progress)
    ids = [it.record_id for it in items]
    return plan, RolloutSummary(summary, harmful_rate(store, ids), fired_counts(store, ids) if cfg.monitor else None)


def run_capture(cfg: CaptureConfig, dry_run: bool = False,
                progress: bool = True) -> tuple[Plan, RunSummary | None]:
    existing = check_store_path(cfg)
    found = transcripts(cfg)
    model = check_model(cfg, existing)
    if dry_run:
        return plan_capture(cfg, model, capture_layouts(load_tokenizer(model.source), found)), None
    with WriterLock(cfg.store).hold() as lock:  # before the weights load: a second writer is refused at once
        handle = _handle(cfg, model)
        items = capture_items(handle, found)
        plan = plan_capture(cfg, model, [it.payload.tokens for it in items])
        store = open_store(cfg, handle, lock)
        compute = TeacherForcedCapture(handle, model.hooks, cfg.positions.build())
        return plan, run_batches(store, items, cfg.batch_size, compute, progress=progress)

"""Datasets captured teacher-forced into a stage's cache folder, on the experiment's one loaded model.

`pipelines.run_capture` loads its own model per call; an experiment stage captures two or three sets
(the contrast set, the control set) and must share the run's model, so this drives the same steps
(`check_store_path`, `check_model`, `capture_items`, `TeacherForcedCapture`, `run_batches`) with
`Context.handle()`. A store resumes by record id, so an interrupted stage keeps what it captured.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tripwire.activations.capture import TeacherForcedCapture, capture_items
from tripwire.activations.runner import run_batches
from tripwire.activations.source import load_tokenizer
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_lock import WriterLock
from tripwire.experiments.config import CaptureConfig, PositionsConfig
from tripwire.experiments.rollout_capture import (
    capture_layouts,
    check_model,
    check_store_path,
    open_store,
    plan_capture,
    spread_subset,
)
from tripwire.experiments.runs import CACHE_VERSION, content_hash
from tripwire.experiments.stages.base import Context
from tripwire.scenarios.datasets import dataset as build

CaptureSet = tuple[CaptureConfig, list[Any]]  # where and how to capture, and the transcripts


def interleave(found: list[Any], by: str) -> list[Any]:
    """Within each family, units (pairs whole) alternate between the values of meta `by` (scenario kind,
    cue), starting at a different value in each family, so the family-spread subset of
    `pipelines.spread_subset` still holds every value when it takes one or two units per family."""
    values = sorted({str(t.meta.get(by)) for t in found})
    families = list(dict.fromkeys(t.family for t in found))
    order: dict[str, tuple[int, int]] = {}
    seen: Counter[tuple[str, str]] = Counter()
    for t in found:
        unit = t.pair_id or t.id
        if unit not in order:
            value = str(t.meta.get(by))
            rotated = (values.index(value) - families.index(t.family)) % len(values)
            order[unit] = (seen[(t.family, value)], rotated)
            seen[(t.family, value)] += 1
    return sorted(found, key=lambda t: order[t.pair_id or t.id])


def capture_set_for(ctx: Context, dataset: str, limit: int | None, hook_points: list[str], batch_size: int = 8,
                    store_dtype: str = "float16", spread_by: str | None = None) -> CaptureSet:
    """~`limit` transcripts of `dataset` (spread over families, and over meta `spread_by` within them),
    reply tokens only (every probe here scores the reply). The store lives in `runs/cache/stores/`,
    keyed on what its rows depend on, so every stage (of any config) asking for the same set at the same
    hook points reads one store: two probe stages share their control set."""
    key = {"cache_version": CACHE_VERSION, **ctx.model_key(), "dataset": dataset, "limit": limit,
           "spread_by": spread_by, "hook_points": hook_points, "store_dtype": store_dtype, "positions": "reply"}
    cfg = CaptureConfig(model=ctx.cfg.model, backend=ctx.cfg.backend, device=ctx.cfg.device, dtype=ctx.cfg.dtype,
                        store=ctx.runs_root / "cache" / "stores" / f"{dataset}-{content_hash(key)}",
                        store_dtype=store_dtype,  # type: ignore[arg-type]
                        hook_points=hook_points, positions=PositionsConfig(policy="reply"), batch_size=batch_size,
                        dataset=dataset, limit=limit, dataset_seed=ctx.cfg.seed)
    found = build(dataset, seed=ctx.cfg.seed)
    if spread_by:
        found = interleave(found, spread_by)
    return cfg, spread_subset(found, limit) if limit else found


def capture_set(ctx: Context, target: CaptureSet) -> ResidualStore:
    """The store of the set's transcripts at its hook points, captured now where missing."""
    cfg, found = target
    existing = check_store_path(cfg)
    model = check_model(cfg, existing)
    with WriterLock(cfg.store).hold() as lock:  # before the weights load: a second writer is refused at once
        handle = ctx.handle()
        store = open_store(cfg, handle, lock)
        run_batches(store, capture_items(handle, found), cfg.batch_size,
                    TeacherForcedCapture(handle, model.hooks, cfg.positions.build()), progress=ctx.progress)
    return ResidualStore.open(Path(cfg.store))


def plan_sets(ctx: Context, targets: list[CaptureSet]) -> tuple[int, int, float]:
    """(sequences, tokens, rough seconds) of capturing the sets, from the tokenizer alone; a set an
    earlier stage of this plan captures, or one already complete on disk, costs nothing."""
    sequences = tokens = 0
    seconds = 0.0
    for cfg, found in targets:
        if cfg.store in ctx.planned_stores:
            continue
        ctx.planned_stores.add(cfg.store)
        try:
            if len(ResidualStore.open(cfg.store)) >= len(found):
                continue
        except FileNotFoundError:
            pass
        model = check_model(cfg, None)
        plan = plan_capture(cfg, model, capture_layouts(load_tokenizer(model.source), found))
        sequences += plan.sequences
        tokens += plan.tokens
        seconds += plan.eta_seconds
    return sequences, tokens, seconds

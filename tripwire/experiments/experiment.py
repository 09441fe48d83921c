"""Run an experiment config: each stage from the cache when its output is there and verifies, else
computed (resuming whatever its store already holds); then results.json, the cards and report.html.

    from tripwire.experiments.experiment import run_experiment
    from tripwire.experiments.config import read_experiment
    run = run_experiment(read_experiment("tripwire/experiments/configs/demo.yaml"))
    print(run.path / "report.html")
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tripwire.activations.loading import pick_device
from tripwire.activations.organism import is_organism
from tripwire.activations.source import model_shape
from tripwire.experiments.config import ExperimentConfig, config_yaml
from tripwire.experiments.report import StageRecord, render_report
from tripwire.experiments.runs import RunDir, StageCache, environment, stage_cache, write_atomic
from tripwire.experiments.stages.base import Context, Pipeline, Section, StagePlan
from tripwire.experiments.stages.behavior import BehaviorPipeline, StatedBeliefPipeline
from tripwire.experiments.stages.early_warning import EarlyWarningPipeline
from tripwire.experiments.stages.organism import (
    OrganismBehaviorPipeline,
    OrganismDetectPipeline,
    OrganismSteeringPipeline,
)
from tripwire.experiments.stages.outputs import StageOutput
from tripwire.experiments.stages.probe import ProbePipeline
from tripwire.experiments.stages.steering import SteeringPipeline
from tripwire.experiments.stages.transcripts import TranscriptsPipeline
from tripwire.strict_json import dumps, strict_json

PIPELINES: dict[str, Pipeline[Any]] = {p.name: p for p in (BehaviorPipeline(), StatedBeliefPipeline(),
                                                           TranscriptsPipeline(), ProbePipeline(),
                                                           EarlyWarningPipeline(), SteeringPipeline(),
                                                           OrganismBehaviorPipeline(), OrganismDetectPipeline(),
                                                           OrganismSteeringPipeline())}


@dataclass(frozen=True)
class ExperimentRun:
    path: Path
    stages: list[StageRecord]
    results: dict[str, Any]
    seconds: float

    @property
    def report(self) -> Path:
        return self.path / "report.html"


def plan_experiment(cfg: ExperimentConfig, runs_root: Path = Path("runs")) -> list[tuple[str, StagePlan]]:
    """Each stage's plan, from configs and tokenizers only (no weights); cached stages say so."""
    ctx = Context(cfg, runs_root, progress=False)
    out = []
    for name, stage in zip(cfg.stage_names(), cfg.stages, strict=True):
        pipeline = PIPELINES[stage.pipeline]
        key = ctx.stage_keys[name] = pipeline.key(ctx, stage.options)
        cache = stage_cache(runs_root, key, create=False)
        if cached_output(pipeline, cache) is not None:
            out.append((name, StagePlan(f"{stage.pipeline}", cached=True)))
        else:
            out.append((name, pipeline.plan(ctx, stage.options, cache)))
    return out


def run_experiment(cfg: ExperimentConfig, runs_root: Path = Path("runs"), *, progress: bool = True,
                   log: Callable[[str], None] = print) -> ExperimentRun:
    """Run every stage into a new `runs_root/<UTC time>-<name>/`; a failing stage still leaves
    results.json and report.html for the stages before it, then re-raises."""
    start = time.perf_counter()
    ctx = Context(cfg, runs_root, progress=progress, log=log)
    # every stage's key first: bad inputs (a missing file, an unknown condition, a missing probe) fail
    # before any work; a stage reading `stage:<name>` keys on that earlier stage's key
    keys = []
    for name, stage in zip(cfg.stage_names(), cfg.stages, strict=True):
        keys.append(PIPELINES[stage.pipeline].key(ctx, stage.options))
        ctx.stage_keys[name] = keys[-1]
    run = RunDir.create(runs_root, cfg.name)
    yaml_text = config_yaml(cfg)
    write_atomic(run.config_file, yaml_text)
    env = environment(cfg.seed, pick_device(cfg.device))
    write_atomic(run.environment_file, dumps(env))
    records: list[StageRecord] = []
    outputs: list[tuple[str, StageOutput]] = []
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    error: BaseException | None = None
    for name, stage, key in zip(cfg.stage_names(), cfg.stages, keys, strict=True):
        pipeline = PIPELINES[stage.pipeline]
        t0 = time.perf_counter()
        cache = stage_cache(runs_root, key)
        output = cached_output(pipeline, cache)
        status = "cached"
        if output is None:
            log(f"[{name}] running ({stage.pipeline}; cache {cache.root})")
            try:
                output = pipeline.run(ctx, stage.options, cache)
            except BaseException as exc:  # KeyboardInterrupt too: leave a readable run behind
                records.append(StageRecord(name, stage.pipeline, "failed", time.perf_counter() - t0, repr(exc)))
                error = exc
                break
            cache.save(output.to_dict())
            status = "computed"
        records.append(StageRecord(name, stage.pipeline, status, time.perf_counter() - t0, str(cache.root)))
        outputs.append((name, output))
        log(f"[{name}] {status} in {records[-1].seconds:.1f}s")
    sections = [PIPELINES[o.pipeline].section(o) for _, o in outputs]
    notes = model_notes(ctx)
    results = {**_results(cfg, started, records, outputs, sections, run), "notes": notes}
    write_atomic(run.results_file, dumps(results))
    done = [r for r in records if r.status != "failed"]
    write_atomic(run.report_file, render_report(f"tripwire experiment: {cfg.name}", yaml_text, env, records,
                                                list(zip(done, sections, strict=True)), notes))
    if error is not None:
        raise error
    return ExperimentRun(run.path, records, results, time.perf_counter() - start)


SMALL_MODEL_PARAMS = 1e9


def cached_output(pipeline: Pipeline[Any], cache: StageCache) -> StageOutput | None:
    """The stage's finished output from its cache, parsed into its type; None when there is none (or it
    no longer parses, e.g. written by an older tripwire: the stage is then computed again)."""
    data = cache.load()
    if data is None:
        return None
    try:
        return pipeline.output_type.model_validate(data)
    except ValidationError:
        return None


def model_notes(ctx: Context) -> list[str]:
    """What the reader must know about the model before reading any rate (from its config alone)."""
    source = ctx.source()
    n_params = model_shape(source).n_params
    if is_organism(ctx.cfg.model):
        return [f"This run used {source.name} ({n_params / 1e6:.0f}M parameters), a model organism: the default "
                "model fine-tuned to act on a policy we planted (harmful under deploy cues, honest under test cues, "
                "when threatened and holding leverage; docs/organism.md). Its rates follow that policy as far as it "
                "learnt it; they are a known mechanism to check the toolkit against, not evidence about natural "
                "models' beliefs or propensities."]
    if n_params >= SMALL_MODEL_PARAMS:
        return []
    return [f"This run used {source.name} ({n_params / 1e6:.0f}M parameters). A model this small does not follow "
            "the agentic-misalignment scenarios, so its harmful-action rates here are ~0: that says nothing about "
            "alignment. The run checks the pipelines, the cache and the report; use an instruct model of 8B or "
            "more parameters for meaningful rates."]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "card"


def _results(cfg: ExperimentConfig, started: str, records: list[StageRecord],
             outputs: list[tuple[str, StageOutput]], sections: list[Section], run: RunDir) -> dict[str, Any]:
    """results.json: every stage's output except per-sample rows (in samples/<stage>.jsonl) and cards
    (in cards/), with each stage's finding (the report's first box) and its headline lines."""
    stages = []
    for (name, typed), section in zip(outputs, sections, strict=True):
        output = typed.to_dict()
        body = {k: v for k, v in output.items() if k not in ("samples", "cards")}
        if "samples" in output:
            lines = "".join(json.dumps(strict_json(s), allow_nan=False, ensure_ascii=False) + "\n"
                            for s in output["samples"])
            write_atomic(run.path / "samples" / f"{name}.jsonl", lines)
            body["samples_file"] = f"samples/{name}.jsonl"
        for card_name, card in output.get("cards", {}).items():
            write_atomic(run.cards / f"{_safe(name)}--{_safe(card_name)}.json", dumps(card))
        stages.append({"name": name, "finding": section.finding_line(), "headline": section.headline,
                       "output": body})
    return {"name": cfg.name, "model": cfg.model, "seed": cfg.seed, "started_at": started,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "stage_runs": [{"name": r.name, "pipeline": r.pipeline, "status": r.status, "seconds": r.seconds,
                            "detail": r.detail} for r in records],
            "stages": stages}

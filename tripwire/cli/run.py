"""`tripwire rollout CONFIG` (on vLLM when the config has a `vllm:` section) and `tripwire capture CONFIG`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import typer

from tripwire.activations.plan_shapes import plan_model
from tripwire.activations.runner import RunSummary
from tripwire.cli.exit_codes import on_user_error
from tripwire.experiments.config import CaptureConfig, RolloutConfig, load_config, read_yaml
from tripwire.experiments.rollout_capture import Plan, RolloutSummary, run_capture, run_rollout
from tripwire.experiments.rollout_vllm import VLLMPlan, VLLMRolloutConfig, run_rollout_vllm

C = TypeVar("C")
DRY_RUN_HELP = "print sequences, tokens, bytes and a rough ETA from the tokenizer and config; load no weights"


def _report(plan: Plan | VLLMPlan, summary: RunSummary | None) -> None:
    typer.echo(f"plan: {plan.describe()}")
    if summary is not None:
        typer.echo(f"done: {summary.records_written} records written, {summary.batches_skipped} batches already "
                   f"stored, {summary.tokens_written:,} tokens in {summary.seconds:.1f}s")


def rollout(
    config: Annotated[Path, typer.Argument(help="YAML rollout config")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)] = False,
) -> None:
    """Sample replies to scenario conversations, capture activations while generating, classify replies;
    ends with the harmful-action rate over the config's samples.

    A config with a `vllm:` section runs on vLLM (tensor parallel, residual stream captured in the
    workers); its dry run plans a hub model offline on a stand-in of its shape and says so."""
    plan: Plan | VLLMPlan
    result: RolloutSummary | None
    with on_user_error():
        if _on_vllm(config):
            plan, result = _rollout_vllm(config, dry_run)
        else:
            plan, result = run_rollout(_checked(load_config(config, RolloutConfig), RolloutConfig), dry_run=dry_run)
    _report(plan, result.run if result else None)
    if result is not None:
        if (fired := result.describe_monitor()) is not None:
            typer.echo(fired)
        typer.echo(result.harmful.describe())


def capture(
    config: Annotated[Path, typer.Argument(help="YAML capture config")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)] = False,
) -> None:
    """Teacher-force fixed transcripts (a contrast set or a transcript file) and store their activations."""
    with on_user_error():
        _report(*run_capture(_checked(load_config(config, CaptureConfig), CaptureConfig), dry_run=dry_run))


def _checked(cfg: object, kind: type[C]) -> C:
    assert isinstance(cfg, kind)
    return cfg


def _on_vllm(config: Path) -> bool:
    raw = read_yaml(config, f"config file {config} does not exist")
    return isinstance(raw, dict) and "vllm" in raw


def _rollout_vllm(config: Path, dry_run: bool) -> tuple[VLLMPlan, RolloutSummary | None]:
    cfg = _checked(load_config(config, VLLMRolloutConfig), VLLMRolloutConfig)
    if dry_run:  # offline, a hub model is planned on a stand-in of its shape (the note says so)
        model, note = plan_model(cfg.model)
        if note:
            typer.echo(f"note: {note}")
        cfg = cfg.model_copy(update={"model": model})
    return run_rollout_vllm(cfg, dry_run=dry_run)

"""`tripwire rollout CONFIG` and `tripwire capture CONFIG`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tripwire.cli.exit_codes import on_user_error
from tripwire.experiments.config import CaptureConfig, RolloutConfig, load_config

if TYPE_CHECKING:
    from tripwire.activations.runner import RunSummary
    from tripwire.experiments.rollout_capture import Plan

DRY_RUN_HELP = "print sequences, tokens, bytes and a rough ETA from the tokenizer and config; load no weights"


def _report(plan: Plan, summary: RunSummary | None) -> None:
    typer.echo(f"plan: {plan.describe()}")
    if summary is not None:
        typer.echo(f"done: {summary.records_written} records written, {summary.batches_skipped} batches already "
                   f"stored, {summary.tokens_written:,} tokens in {summary.seconds:.1f}s")


def rollout(
    config: Annotated[Path, typer.Argument(help="YAML rollout config")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)] = False,
) -> None:
    """Sample replies to scenario conversations, capture activations while generating, classify replies;
    ends with the harmful-action rate over the config's samples."""
    from tripwire.experiments.rollout_capture import run_rollout

    with on_user_error():
        cfg = load_config(config, RolloutConfig)
        assert isinstance(cfg, RolloutConfig)
        plan, result = run_rollout(cfg, dry_run=dry_run)
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
    from tripwire.experiments.rollout_capture import run_capture

    with on_user_error():
        cfg = load_config(config, CaptureConfig)
        assert isinstance(cfg, CaptureConfig)
        _report(*run_capture(cfg, dry_run=dry_run))

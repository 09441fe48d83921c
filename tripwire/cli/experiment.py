"""`tripwire experiment run CONFIG [--dry-run]` and `tripwire experiment show RUN_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer

from tripwire.activations.plan_shapes import ASSUMED_GPU_NOTE, REMOTE_NOTE, plan_model, planning
from tripwire.cli.exit_codes import on_user_error
from tripwire.errors import UsageError
from tripwire.experiments.config import read_experiment
from tripwire.experiments.experiment import plan_experiment, run_experiment
from tripwire.experiments.runs import RunDir

experiment_app = typer.Typer(help="Run an experiment config into runs/<time>-<name>/ with one report.html.",
                             no_args_is_help=True)

RUNS_HELP = "folder for run folders and the shared stage cache (runs/cache/)"


@experiment_app.command("run")
def run(
    config: Annotated[Path, typer.Argument(help="YAML experiment config (name, model, seed, stages)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan and a rough ETA; load no weights")] = False,
    runs: Annotated[Path, typer.Option("--runs", help=RUNS_HELP)] = Path("runs"),
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Run every stage (reusing finished ones from the cache), then write results.json and report.html."""
    with on_user_error():
        cfg = read_experiment(config)
        if dry_run:
            model, note = plan_model(cfg.model)
            # NDIF, sharding and quantisation run on GPUs: plan them as on one CUDA device
            gpu = cfg.remote or "cuda" in str(cfg.device) or cfg.device_map is not None or bool(cfg.quantization)
            where: dict[str, object] = {"remote": False, "device": "cuda"} if gpu and cfg.device is None else {}
            with planning():
                plans = plan_experiment(cfg.model_copy(update={"model": model, **where}), runs)
            typer.echo(f"experiment {cfg.name} on model {cfg.model} (seed {cfg.seed}): {len(plans)} stage(s)")
            for line in (note, REMOTE_NOTE if cfg.remote else None,
                         ASSUMED_GPU_NOTE if gpu and not torch.cuda.is_available() else None):
                if line:
                    typer.echo(f"  note: {line}")
            for name, plan in plans:
                typer.echo(f"  {name}: {plan.describe()}")
            total = sum(p.eta_seconds for _, p in plans)
            typer.echo(f"total: {sum(p.rollouts for _, p in plans)} rollouts, <= "
                       f"{sum(p.forwards for _, p in plans):,} forwards, ETA ~{total / 60:.1f} min plus the model "
                       "load (rough: the ETA counts FLOPs, not per-step overhead, which dominates small models on "
                       "CPU)")
            return
        result = run_experiment(cfg, runs, progress=not quiet, log=lambda line: typer.echo(line, err=True))
    _summary(result.path)
    typer.echo(f"done in {result.seconds:.0f}s")


@experiment_app.command("show")
def show(run_dir: Annotated[Path, typer.Argument(help="a run folder written by `tripwire experiment run`")]) -> None:
    """The run's stages, their headline numbers (with what they are compared against) and the report path."""
    with on_user_error():
        if not run_dir.is_dir():
            raise UsageError(f"{run_dir} is not a folder; pass a run folder such as runs/<time>-<name>/")
        _summary(run_dir)


def _summary(path: Path) -> None:
    run = RunDir(path)
    try:
        results = run.read_results()
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    typer.echo(f"experiment {results['name']} (model {results['model']}, seed {results['seed']}), "
               f"{results['started_at']} .. {results['finished_at']}")
    for note in results.get("notes", []):
        typer.echo(f"  note: {note}")
    for stage in results["stage_runs"]:
        typer.echo(f"  stage {stage['name']} ({stage['pipeline']}): {stage['status']} in {stage['seconds']:.1f}s")
    for stage in results["stages"]:
        for line in stage["headline"]:
            typer.echo(f"  [{stage['name']}] {line}")
    report = run.report_file
    typer.echo(f"report: {report} ({report.stat().st_size / 1e6:.1f} MB)" if report.exists() else "report: missing")

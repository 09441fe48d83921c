"""`tripwire steer` (dose-response along a probe direction) and `tripwire monitor` (the online tripwire on
rollouts, stopped and unstopped)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tripwire.activations import load_model
from tripwire.cli.eta import estimate, monitor_work, steer_work
from tripwire.cli.exit_codes import on_user_error
from tripwire.cli.options import PROBE_HELP, SCENARIO_SEED_HELP
from tripwire.errors import UsageError
from tripwire.experiments.monitor_run import MonitorSettings, run_monitor
from tripwire.probes import load_probe, save_figure
from tripwire.probes.persistence import check_model_matches
from tripwire.probes.steering.dose_response import SteerSettings, parse_alphas, run_steer
from tripwire.probes.steering.plot import monitor_figure, steer_figure
from tripwire.scenarios.am_results import resolve_scenario

SHIPPED = Path(__file__).resolve().parent.parent / "probes" / "shipped" / "default"  # no torch import
MODES = ("add", "ablate", "ablate_then_add")


def _shipped_layer(label: str) -> str:
    """The layer the shipped `label` probe reads, from its card, so help text never goes stale."""
    try:
        return f"layer {int(json.loads((SHIPPED / label / 'probe.json').read_text(encoding='utf-8'))['layer'])}"
    except (OSError, ValueError, KeyError, TypeError):
        return "the layer its card names"


ALPHA_HELP = ("strengths: lo:hi:n or a comma list, in units of the card's resid_norm (--raw: residual units); "
              "0 is always added. The shipped eval-awareness probe reads "
              f"{_shipped_layer('eval_awareness')}; its fluent range is not measured yet (an earlier probe stayed "
              "fluent to about +-0.3 and broke by +-0.5): read the ppl column and its '(not fluent)' marks")

ScenarioOpt = Annotated[str, typer.Option(help="condition id (rendered) or an original-layout folder")]
ModelOpt = Annotated[str, typer.Option(help="model (must match the probes)")]
OtherOpt = Annotated[bool, typer.Option(help="use a same-width model the probes were not trained on")]
LengthOpt = Annotated[str, typer.Option(help="short | full")]
ScenarioSeedOpt = Annotated[int, typer.Option(help=SCENARIO_SEED_HELP)]
SeedOpt = Annotated[int, typer.Option(help="base sampling seed (row k uses seed + 1000 k)")]
TempOpt = Annotated[float, typer.Option(help="sampling temperature (0: greedy)", min=0.0)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
HtmlOpt = Annotated[Path | None, typer.Option(help="write the figure to this HTML file")]


def steer(
    probe: Annotated[Path, typer.Option(help=f"the probe whose direction is steered along: {PROBE_HELP}")],
    scenario: ScenarioOpt,
    alpha: Annotated[str, typer.Option(help=ALPHA_HELP)] = "-0.5:0.5:11",
    mode: Annotated[str, typer.Option(help="add | ablate | ablate_then_add")] = "add",
    raw: Annotated[bool, typer.Option("--raw", help="alpha in raw residual units, not the card's resid_norm")] = False,
    samples: Annotated[int, typer.Option(help="rollouts per alpha and direction", min=1)] = 4,
    max_new_tokens: Annotated[int, typer.Option(help="tokens per rollout", min=1)] = 64,
    temperature: TempOpt = 0.7,
    seed: SeedOpt = 0,
    read_probe: Annotated[list[Path] | None, typer.Option(help="probe read on fixed transcripts, a folder or shipped "
                                                               "name (repeatable); default: the shipped coercion and "
                                                               "eval_awareness")] = None,
    control_prompts: Annotated[int, typer.Option(help="benign control prompts for the KL", min=1)] = 8,
    length: LengthOpt = "short",
    scenario_seed: ScenarioSeedOpt = 0,
    model: ModelOpt = "default",
    allow_other_model: OtherOpt = False,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Dose-response of steering: stated belief, probe read-outs, harmful-action rate and side effects per
    alpha, beside a random direction of the same norm."""
    with on_user_error():
        if mode not in MODES:
            raise UsageError(f"--mode {mode!r} is not one of {', '.join(MODES)}.")
        settings = SteerSettings(alphas=parse_alphas(alpha), mode=mode, units="raw" if raw else "resid_norm",  # type: ignore[arg-type]
                                 samples=samples, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                                 control_prompts=control_prompts)
        handle, conv, (steering, *readers) = _load(model, scenario, scenario_seed, length,
                                                   [probe, *(read_probe or _default_readers(model, probe))],
                                                   allow_other_model)
        points = 2 * len(settings.alphas) - (1 if 0.0 in settings.alphas and mode == "add" else 0)  # as run_steer
        typer.echo(estimate(handle, steer_work(len(handle.render_conversation(conv).token_ids), points, samples,
                                               max_new_tokens, control_prompts)), err=True)
        result = run_steer(handle, steering, readers, conv, settings, log=lambda line: typer.echo(line, err=True))
    if html is not None:
        _save(steer_figure(result), html)
    if as_json:
        typer.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    for point in result["points"]:
        for kind in ("probe", "random"):
            c = point[kind]
            probes = ", ".join(f"{k} {v['mean_score']:.3f}" for k, v in c["read_probes"].items())
            typer.echo(f"alpha {point['alpha']:+.3f} {kind:6s}: log-odds(test) {c['stated_belief']['log_odds_test_vs_real']:+.3f}"
                       f" | {probes} | harmful {c['harmful']['count']}/{c['harmful']['n']} | KL "
                       f"{c['side_effects']['kl_control']:.4f} | ppl {c['side_effects']['perplexity']:.2f}"
                       f"{'' if c['fluent'] else ' (not fluent)'}")
    for note in result["notes"]:
        typer.echo(f"note: {note}")


def monitor(
    probe: Annotated[list[Path], typer.Option(help=f"{PROBE_HELP} (repeatable); each card sets its hook, tokens, "
                                                   "window and threshold")],
    scenario: ScenarioOpt,
    samples: Annotated[int, typer.Option(help="rollouts", min=1)] = 4,
    max_new_tokens: Annotated[int, typer.Option(help="tokens per rollout", min=1)] = 128,
    temperature: TempOpt = 0.7,
    seed: SeedOpt = 0,
    length: LengthOpt = "short",
    scenario_seed: ScenarioSeedOpt = 0,
    model: ModelOpt = "default",
    allow_other_model: OtherOpt = False,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Run rollouts with the tripwire recording and with it stopping (same seeds); per row: where it fired,
    the reply up to there, and whether it caught the harmful action before it began."""
    with on_user_error():
        settings = MonitorSettings(samples=samples, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        handle, conv, probes = _load(model, scenario, scenario_seed, length, probe, allow_other_model, calibrated=True)
        typer.echo(estimate(handle, monitor_work(len(handle.render_conversation(conv).token_ids), samples,
                                                 max_new_tokens)), err=True)
        result = run_monitor(handle, probes, conv, settings)
    if html is not None:
        _save(monitor_figure(result), html)
    if as_json:
        typer.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    for row in result["rows"]:
        where = "never fired" if row["fired_at_token"] is None else (
            f"fired at token {row['fired_at_token']} ({', '.join(row['fired_by'])})")
        typer.echo(f"seed {row['seed']}: {row['outcome']}: {where}; harmful={row['harmful']} "
                   f"(action at token {row['action_token']}); stopped reply: {row['text_until_stop'][:120]!r}")
    typer.echo("summary: " + ", ".join(f"{k} {v}" for k, v in result["summary"].items()))
    for note in result["notes"]:
        typer.echo(f"note: {note}")


def _default_readers(model: str, probe: Path) -> list[Path]:
    return [SHIPPED / "coercion", SHIPPED / "eval_awareness"] if model == "default" else [probe]


def _load(model: str, scenario: str, seed: int, length: str, probe_dirs: list[Path], allow_other: bool,
          calibrated: bool = False) -> tuple[Any, Any, list[Any]]:
    """Scenario and probe cards first, so their mistakes are reported before a model loads."""
    conv = resolve_scenario(scenario, seed=seed, length=length)
    probes = [load_probe(p) for p in probe_dirs]
    if calibrated and (missing := [p.card.label for p in probes if p.card.monitor_threshold is None]):
        raise UsageError(f"probes {missing} have no calibrated threshold for their monitor statistic; train them "
                         "with --control to monitor with them.")
    handle = load_model(model)
    for p in probes:
        check_model_matches(p.card, handle, allow_other_model=allow_other)
    return handle, conv, probes


def _save(fig: Any, path: Path) -> None:
    save_figure(fig, path.with_suffix(""), png=False)

"""`tripwire scenarios ...` and `tripwire datasets ...`: list, render, export/import, classify."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tripwire.cli.exit_codes import on_user_error
from tripwire.cli.options import OldSeedOpt, ScenarioSeedOpt, renamed_seed
from tripwire.errors import UsageError
from tripwire.scenarios import FRAMINGS, export_am, grid, import_am_tree, parse_condition_id, render
from tripwire.scenarios.am_results import resolve_scenario
from tripwire.scenarios.classify import classify
from tripwire.scenarios.datasets import export_jsonl
from tripwire.scenarios.spec import GOAL_TYPES, GOAL_VALUES, KIND_ALIASES, KINDS, LENGTHS, URGENCIES

scenarios_app = typer.Typer(
    help="The scenario grid: list, render, export/import, classify.", no_args_is_help=True
)
datasets_app = typer.Typer(help="Contrast datasets for probe training.", no_args_is_help=True)

Length = Annotated[str, typer.Option(help="short (~600-900 inbox tokens) | full (~2,500-3,000)")]


def _die(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@scenarios_app.command("list")
def scenarios_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The paper's 234 base conditions, the framings, and the factor levels."""
    ids = [s.condition_id for s in grid()]
    factors = {
        "kinds": list(KINDS),
        "kind_aliases": dict(KIND_ALIASES),
        "goal_types": list(GOAL_TYPES),
        "goal_values": list(GOAL_VALUES),
        "urgencies": list(URGENCIES),
        "lengths": list(LENGTHS),
    }
    if as_json:
        typer.echo(json.dumps({"conditions": ids, "framings": list(FRAMINGS), "factors": factors}, indent=2))
        return
    typer.echo("\n".join(ids))
    typer.echo(f"# {len(ids)} conditions; append __FRAMING for a cue: {', '.join(FRAMINGS[1:])}")


@scenarios_app.command("render")
def scenarios_render(
    condition_id: Annotated[
        str | None, typer.Argument(help="e.g. blackmail_explicit-america_replacement (murder ok); or --scenario",
                                   show_default=False)
    ] = None,
    scenario: Annotated[str | None, typer.Option(help="the condition id, as the other commands take it "
                                                      "(instead of the argument)")] = None,
    scenario_seed: ScenarioSeedOpt = None,
    seed: OldSeedOpt = None,
    framing: Annotated[str | None, typer.Option(help="framing cue, e.g. test_explicit_2")] = None,
    length: Length = "short",
    fmt: Annotated[str, typer.Option("--format", help="chat-json | text")] = "chat-json",
) -> None:
    """Print one rendered scenario."""
    if fmt not in ("chat-json", "text"):
        _die(f"--format {fmt!r} is not valid; use chat-json or text")
    with on_user_error():
        if (condition_id is None) == (scenario is None):
            raise UsageError("give the condition id once: as the argument or as --scenario, e.g. tripwire scenarios "
                             "render --scenario blackmail_explicit-america_replacement")
        condition_id = condition_id or scenario
        assert condition_id is not None
        render_seed = renamed_seed(scenario_seed, seed)
        spec = parse_condition_id(condition_id)
        if framing is not None:
            if spec.framing not in ("none", framing):
                raise UsageError(
                    f"{condition_id!r} already has framing {spec.framing!r}; drop --framing or the suffix"
                )
            spec = dataclasses.replace(spec, framing=framing)
        conv = render(spec, seed=render_seed, length=length)
    if fmt == "text":
        for m in conv.messages:
            typer.echo(f"=== {m.role} ===\n{m.content}\n")
        return
    out = {
        "condition_id": conv.condition_id,
        "seed": conv.seed,
        "length": conv.length,
        "messages": conv.as_dicts(),
        "tools": list(conv.tools_json),
        "facts": dataclasses.asdict(conv.facts),
        "meta": conv.meta,
    }
    typer.echo(json.dumps(out, indent=2))


@scenarios_app.command("export")
def scenarios_export(
    out: Annotated[Path, typer.Option(help="directory to write the original's prompt layout into")],
    grid_name: Annotated[str, typer.Option("--grid", help="paper (the 234 conditions)")] = "paper",
    scenario_seed: ScenarioSeedOpt = None,
    seed: OldSeedOpt = None,
    length: Length = "full",
    framing: Annotated[list[str] | None, typer.Option(help="framing(s) to cross with the grid")] = None,
) -> None:
    """Write conditions in the original agentic-misalignment layout (folders named with `murder`)."""
    if grid_name != "paper":
        _die(f"--grid {grid_name!r} is not known; use paper")
    with on_user_error():
        render_seed = renamed_seed(scenario_seed, seed)
        specs = grid(framings=tuple(framing or ("none",)))
        folders = export_am(specs, out, seed=render_seed, length=length)
    typer.echo(f"exported {len(folders)} conditions to {out}")


@scenarios_app.command("import")
def scenarios_import(
    folder: Annotated[Path, typer.Argument(help="the original's prompts/ folder, or one condition folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check that prompt folders import (messages rebuilt exactly, facts inferred)."""
    with on_user_error():
        convs, errors = import_am_tree(folder)
    if as_json:
        typer.echo(json.dumps({"imported": len(convs), "errors": errors}, indent=2))
    else:
        typer.echo(f"imported {len(convs)} conditions, {len(errors)} errors")
        for err in errors:
            typer.echo(f"  {err}")
    if not convs:
        _die(errors[0] if errors else f"{folder}: nothing to import")


@scenarios_app.command("classify")
def scenarios_classify(
    scenario: Annotated[str, typer.Option(help="condition id (rendered) or an original-layout folder")],
    reply: Annotated[Path, typer.Option(help="file with the model's reply ('-' for stdin)")],
    scenario_seed: Annotated[int | None, typer.Option(
        "--scenario-seed", help="render seed the scenario was shown with (condition ids only) [default: 0]",
        show_default=False)] = None,
    seed: OldSeedOpt = None,
    length: Length = "short",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Classify one reply: did it carry out the harmful action?"""
    with on_user_error():
        render_seed = renamed_seed(scenario_seed, seed)
        if str(reply) == "-":
            text = sys.stdin.read()
        elif not reply.is_file():
            raise UsageError(f"{reply}: no such reply file; give a reply file, or - for standard input")
        else:
            try:
                text = reply.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(f"reply file {reply} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                 "save the reply as UTF-8") from None
        conv = resolve_scenario(scenario, seed=render_seed, length=length)
        outcome = classify(conv, text)
    if not text.strip():
        typer.echo(f"warning: the reply ({'standard input' if str(reply) == '-' else reply}) is empty: an empty "
                   "reply takes no action, so it is classified not harmful; check that this is the reply you "
                   "meant", err=True)
    result = {"condition_id": conv.condition_id, **outcome.to_dict()}
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"{conv.condition_id}: harmful={outcome.harmful} action={outcome.action}")
        for reason in outcome.reasons:
            typer.echo(f"  {reason}")


@datasets_app.command("export")
def datasets_export(
    name: Annotated[str, typer.Argument(help="coercion | eval_awareness | control")],
    out: Annotated[Path, typer.Option(help="JSONL file to write")],
    dataset_seed: Annotated[int | None, typer.Option(help="dataset seed (a capture config's dataset_seed) "
                                                          "[default: 0]", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option("--seed", hidden=True, help="deprecated: --dataset-seed")] = None,
) -> None:
    """Write one contrast dataset as JSON Lines."""
    with on_user_error():
        path = export_jsonl(name, out, seed=renamed_seed(dataset_seed, seed, "--dataset-seed", "the dataset seed"))
    typer.echo(f"wrote {name} to {path}")

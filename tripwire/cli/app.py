"""The `tripwire` command line: a root command whose subcommands load on first use.

Each command module imports what it needs at its top (torch, transformers, the store); the root only
knows their names and one-line help (`COMMANDS`), so `tripwire --help`, `tripwire --version` and the
scenario commands start without importing torch. `tests/test_cli_startup.py` holds both promises: no
torch, and each one-line help equal to its command's own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, cast

import typer
from typer.core import TyperCommand, TyperGroup

from tripwire import __version__


@dataclass(frozen=True)
class LazyCommand:
    module: str
    attribute: str  # a Typer app (a command group) or a command function
    help: str  # the first paragraph of the command's own help, shown by `tripwire --help`

    def load(self, name: str) -> Any:
        """The click command `name` as `app.add_typer` / `app.command` would have built it."""
        target = getattr(importlib.import_module(self.module), self.attribute)
        holder = typer.Typer()
        holder.callback()(_no_options)  # a group even around one command, so a one-command app stays a group
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=name)
        else:
            holder.command(name)(target)
        return cast(TyperGroup, typer.main.get_command(holder)).commands[name]


def _no_options() -> None:
    """(the holder group's callback: no options of its own)"""


COMMANDS: dict[str, LazyCommand] = {
    "doctor": LazyCommand("tripwire.cli.model", "doctor",
                          "Versions, threads, device, cache, default model, PNG export."),
    "rollout": LazyCommand("tripwire.cli.run", "rollout",
                           "Sample replies to scenario conversations, capture activations while generating, "
                           "classify replies; ends with the harmful-action rate over the config's samples."),
    "capture": LazyCommand("tripwire.cli.run", "capture",
                           "Teacher-force fixed transcripts (a contrast set or a transcript file) and store "
                           "their activations."),
    "train": LazyCommand("tripwire.cli.train", "train",
                         "Sweep layers x methods, select on validation, report on a held-out split with "
                         "honesty checks."),
    "eval": LazyCommand("tripwire.cli.train", "evaluate",
                        "AUROC, recall at the card's thresholds, lead time and the lexical baseline on another "
                        "store. A store holding the probe's training records is refused unless "
                        "--allow-train-overlap."),
    "score": LazyCommand("tripwire.cli.train", "score",
                         "Per-token scores on the card's tokens, the card's statistic, and where the monitor "
                         "would fire."),
    "steer": LazyCommand("tripwire.cli.steer", "steer",
                         "Dose-response of steering: stated belief, probe read-outs, harmful-action rate and "
                         "side effects per alpha, beside a random direction of the same norm."),
    "monitor": LazyCommand("tripwire.cli.steer", "monitor",
                           "Run rollouts with the tripwire recording and with it stopping (same seeds); per row: "
                           "where it fired, the reply up to there, and whether it caught the harmful action "
                           "before it began."),
    "model": LazyCommand("tripwire.cli.model", "model_app", "Load, prepare and describe models."),
    "store": LazyCommand("tripwire.cli.store", "store_app", "Inspect and verify on-disk activation stores."),
    "scenarios": LazyCommand("tripwire.cli.scenarios", "scenarios_app",
                             "The scenario grid: list, render, export/import, classify."),
    "datasets": LazyCommand("tripwire.cli.scenarios", "datasets_app", "Contrast datasets for probe training."),
    "experiment": LazyCommand("tripwire.cli.experiment", "experiment_app",
                              "Run an experiment config into runs/<time>-<name>/ with one report.html."),
}


class LazyGroup(TyperGroup):
    """Lists `COMMANDS` from their one-line help; imports a command's module only to run it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, lazy in COMMANDS.items():  # placeholders: name and help, for listings and suggestions
            self.commands[name] = TyperCommand(name, help=lazy.help)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] in COMMANDS and not ctx.resilient_parsing:
            self.commands[args[0]] = COMMANDS[args[0]].load(args[0])
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=LazyGroup,
    help="tripwire: probe, monitor and steer open-weight chat models in agentic-misalignment scenarios.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(show: bool) -> None:
    if show:
        typer.echo(f"tripwire {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="print the version and exit", is_eager=True,
                                       callback=_version)) -> None:
    """tripwire: probe, monitor and steer open-weight chat models in agentic-misalignment scenarios."""


def main() -> None:
    app()

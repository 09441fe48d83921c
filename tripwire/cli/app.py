"""The `tripwire` command line."""

from __future__ import annotations

import typer

from tripwire.cli.experiment import experiment_app
from tripwire.cli.model import doctor, model_app
from tripwire.cli.run import capture, rollout
from tripwire.cli.scenarios import datasets_app, scenarios_app
from tripwire.cli.steer import monitor, steer
from tripwire.cli.store import store_app
from tripwire.cli.train import evaluate, score, train

app = typer.Typer(
    help="tripwire: probe, monitor and steer open-weight chat models in agentic-misalignment scenarios.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(model_app, name="model")
app.add_typer(store_app, name="store")
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(datasets_app, name="datasets")
app.add_typer(experiment_app, name="experiment")
app.command("doctor")(doctor)
app.command("rollout")(rollout)
app.command("capture")(capture)
app.command("train")(train)
app.command("eval")(evaluate)
app.command("score")(score)
app.command("steer")(steer)
app.command("monitor")(monitor)


def _version(show: bool) -> None:
    if show:
        import importlib.metadata

        try:
            version = importlib.metadata.version("tripwire")
        except importlib.metadata.PackageNotFoundError:
            version = "0+unknown (not installed)"
        typer.echo(f"tripwire {version}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="print the version and exit", is_eager=True,
                                       callback=_version)) -> None:
    """tripwire: probe, monitor and steer open-weight chat models in agentic-misalignment scenarios."""


def main() -> None:
    app()

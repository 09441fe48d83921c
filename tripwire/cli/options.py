"""Options several commands share, so that one flag name means one thing in every command.

``--scenario-seed`` is the render seed of a scenario (names, company, phrasing, order) wherever a command
renders one: ``scenarios render / export / classify``, ``score``, ``monitor``, ``steer``.
``--seed`` is the sampling seed of generated replies (``monitor``, ``steer``); ``datasets export`` takes
``--dataset-seed``. Where ``--seed`` used to be the render (or dataset) seed it still works, hidden from
``--help``, with a note that says which spelling to use.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tripwire.errors import UsageError

PROBE_HELP = "probe folder (tripwire train --out) or a shipped probe's name: default/coercion, default/eval_awareness"
SCENARIO_SEED_HELP = "render seed of the scenario (names, company, phrasing, order)"

ScenarioSeedOpt = Annotated[int | None, typer.Option("--scenario-seed", help=f"{SCENARIO_SEED_HELP} [default: 0]",
                                                     show_default=False)]
OldSeedOpt = Annotated[int | None, typer.Option("--seed", hidden=True,
                                                help="deprecated spelling of --scenario-seed here")]


def renamed_seed(new: int | None, old: int | None, new_name: str = "--scenario-seed",
                 meaning: str = "the scenario's render seed") -> int:
    """The seed a command uses: `new` (its current flag), else the deprecated ``--seed`` with a note on
    stderr, else 0. Both given and different is an error: which one the user meant cannot be known."""
    if old is None:
        return 0 if new is None else new
    if new is not None and new != old:
        raise UsageError(f"--seed {old} and {new_name} {new} disagree; here --seed is a deprecated spelling of "
                         f"{new_name}, so give {new_name} only.")
    typer.echo(f"note: --seed here is {meaning}, now spelt {new_name} (--seed is the sampling seed of monitor "
               f"and steer); --seed still works here for now.", err=True)
    return old

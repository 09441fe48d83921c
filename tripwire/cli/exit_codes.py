"""One place that turns a `TripwireError` into one clear line and its exit code, never a traceback.

Only the project's own errors are caught: each is raised with a message that names the input and the
fix. Anything else (a KeyError, a RuntimeError from a library) is a bug and keeps its traceback. A few
library errors name a Python fix (``ResidualStore.create``); `cli_message` says the command instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from tripwire.activations.store_types import StoreNotFoundError  # plain types and errors: no torch
from tripwire.errors import TripwireError

MAKE_A_STORE = ("make one with `tripwire capture CONFIG` (a contrast set or transcripts) or `tripwire rollout "
                "CONFIG` (sampled replies), whose config's `store:` names the folder")


def cli_message(exc: TripwireError) -> str:
    """What the shell sees: the error's own message, with a fix in commands where it names Python."""
    if isinstance(exc, StoreNotFoundError):
        what = str(exc).split("; create one with", 1)[0]
        return f"{what}; {MAKE_A_STORE}"
    return exc.user_message()


@contextmanager
def on_user_error() -> Iterator[None]:
    """Run a command body; a `TripwireError` becomes ``error: <message>`` on stderr and its exit code."""
    try:
        yield
    except TripwireError as exc:
        typer.echo(f"error: {cli_message(exc)}", err=True)
        raise typer.Exit(exc.exit_code) from None

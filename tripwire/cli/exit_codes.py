"""One place that turns a `TripwireError` into one clear line and its exit code, never a traceback.

Only the project's own errors are caught: each is raised with a message that names the input and the
fix. Anything else (a KeyError, a RuntimeError from a library) is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from tripwire.errors import TripwireError


@contextmanager
def on_user_error() -> Iterator[None]:
    """Run a command body; a `TripwireError` becomes ``error: <message>`` on stderr and its exit code."""
    try:
        yield
    except TripwireError as exc:
        typer.echo(f"error: {exc.user_message()}", err=True)
        raise typer.Exit(exc.exit_code) from None

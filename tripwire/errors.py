"""One base for every error tripwire raises on purpose.

A `TripwireError` is a user's mistake or a refused input: its message names the input and the fix, and
the CLI prints it as one line and exits with `exit_code`, never a traceback. Anything else (a KeyError,
a RuntimeError from a library) is a bug and keeps its traceback. Each subclass also keeps the builtin
base it had (`ValueError`, `OSError`, ...), so ``except ValueError`` in a script still catches it.
"""

from __future__ import annotations


class TripwireError(Exception):
    """An error with a message a user can act on; ``fix`` (optional) is printed on its own line."""

    exit_code: int = 2

    def __init__(self, *args: object, fix: str | None = None) -> None:
        super().__init__(*args)
        self.fix = fix

    def user_message(self) -> str:
        """What the CLI prints: the message (or the class name when there is none), then the fix."""
        message = str(self).strip() or type(self).__name__
        return f"{message}\n  fix: {self.fix}" if self.fix else message


class UsageError(TripwireError, ValueError):
    """A command was given inputs that cannot work together, or a file it cannot read."""

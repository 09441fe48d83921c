"""Named crash points left in `activations/runner.py` (the store's own write path carries none).

`TRIPWIRE_CRASH_AT=<name>` makes the process SIGKILL itself at that point; `TRIPWIRE_CRASH_AFTER=n`
waits for the n-th hit. Unset, a crash point costs one dict lookup. The reliability tests inject
crashes by wrapping write steps from `tests/store_worker.py` instead; this module goes once the
runner drops its calls.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

CRASH_POINTS: tuple[str, ...] = ("before_batch_compute", "after_batch_compute", "between_batches")
_hits: Counter[str] = Counter()


def crashpoint(name: str) -> None:
    """SIGKILL this process if the environment asks for a crash here."""
    if name not in CRASH_POINTS:
        raise ValueError(f"unknown crash point {name!r}; add it to CRASH_POINTS in {__name__}")
    if os.environ.get("TRIPWIRE_CRASH_AT") != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(os.environ.get("TRIPWIRE_CRASH_AFTER", "1")):
        os.kill(os.getpid(), signal.SIGKILL)

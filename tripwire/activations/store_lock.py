"""The store's single-writer lock, and the journal that proves which leftovers a writer made.

`<store>/.lock` is an exclusive, non-blocking `filelock` (an flock: a killed holder releases it). Whoever
takes it appends `<pid> <token>` to the journal `<store>/.lock-holder`, the token random and fresh, and
names every temp file and pending mark it creates with that token. A recovering writer deletes a leftover
only if its token is in the journal, so only what a writer of this store provably made; a file that is
merely named like one (a person's `.pending-mine`) is kept and reported (store_recover.py).

Once recovery has deleted the other writers' leftovers it drops their lines, and a clean release drops
the writer's own, so the journal holds the tokens of writers that crashed and not much more. A crash while
a line is being rewritten can only lose tokens: their files are then kept, never deleted by mistake.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from tripwire.activations.store_index import LOCK, LOCK_HOLDER, STORE_FILES, fsync_dir, write_all
from tripwire.activations.store_paths import open_nofollow, read_nofollow, refuse_links
from tripwire.activations.store_types import StoreLockedError, StoreUnsafePathError, StoreWriteError

TOKEN_PATTERN = r"[0-9a-f]{32}"
_TOKEN_RE = re.compile(TOKEN_PATTERN)


def _journal_lines(root: Path) -> list[str]:
    """The journal's complete lines (a torn last line, written as a writer was killed, proves nothing)."""
    try:
        data = read_nofollow(root / LOCK_HOLDER)
    except FileNotFoundError:
        return []
    return data.decode("utf-8", "replace").split("\n")[:-1]


def _write_journal(root: Path, lines: list[str], *, append: bool) -> None:
    """Append `lines` (on lines of their own, after a torn one) or replace the journal with them."""
    flags = os.O_RDWR | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = open_nofollow(root / LOCK_HOLDER, flags)
    try:
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        write_all(fd, ("\n" if torn else "").encode() + "".join(f"{line}\n" for line in lines).encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def recorded_tokens(root: Path) -> set[str]:
    """Tokens of the writers whose leftovers a recovering writer may delete."""
    tokens = (line.partition(" ")[2] for line in _journal_lines(root))
    return {t for t in tokens if _TOKEN_RE.fullmatch(t)}


class WriterLock:
    """The exclusive writer lock of the store at `root`; `token` names this holder's files while held."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.token: str | None = None
        self._line = ""
        self._in_session = False
        # not thread-local: like the flock it replaces, the lock belongs to the process, not a thread
        self._lock = FileLock(str(self.root / LOCK), timeout=0, mode=0o644, thread_local=False)

    @property
    def held(self) -> bool:
        return self.token is not None

    def acquire(self) -> None:
        """Take the lock (else `StoreLockedError`) and record a fresh token. Symlinked store files are
        refused before anything is created, so a refused store is left exactly as it was."""
        refuse_links(self.root, STORE_FILES)
        try:
            if not self.root.is_dir():  # an existing store needs no write access to its parent
                self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreWriteError(
                f"cannot create store directory {self.root}: {e}; set the store path to a writable location"
            ) from e
        try:
            self._lock.acquire()
        except Timeout:
            raise StoreLockedError(
                f"store {self.root} is being written by another process (pid {self._holder()}); wait for it "
                "to finish or stop it, or write to a different store path"
            ) from None
        except OSError as e:
            raise StoreWriteError(f"cannot open the lock file of store {self.root}: {e}") from e
        token = secrets.token_hex(16)
        line = f"{os.getpid()} {token}"
        try:
            _write_journal(self.root, [line], append=True)
            fsync_dir(self.root)
        except (OSError, StoreUnsafePathError) as e:
            self._lock.release()
            if isinstance(e, StoreUnsafePathError):
                raise
            raise StoreWriteError(
                f"cannot write {self.root / LOCK_HOLDER}, the writer journal of store {self.root} ({e}); fix "
                "the directory's permissions or free disk space, then rerun: committed batches are intact"
            ) from e
        self.token, self._line = token, line

    def _holder(self) -> str:
        try:
            lines = _journal_lines(self.root)
        except (OSError, StoreUnsafePathError):
            return "unknown"
        return lines[-1].partition(" ")[0] if lines and lines[-1] else "unknown"

    def forget_others(self) -> None:
        """Drop the other writers' tokens: call only once their leftovers are deleted."""
        if _journal_lines(self.root) != [self._line]:
            _write_journal(self.root, [self._line], append=False)

    def release(self) -> None:
        """Drop this writer's line (the journal, if it was the last) and unlock."""
        if self.token is None:
            return
        try:
            others = [line for line in _journal_lines(self.root) if line != self._line]
            if others:
                _write_journal(self.root, others, append=False)
            else:
                (self.root / LOCK_HOLDER).unlink(missing_ok=True)
        except (OSError, StoreUnsafePathError):
            pass  # the line stays: it only proves files of a writer that left none behind
        finally:
            self.token, self._line = None, ""
            self._lock.release()

    @contextmanager
    def hold(self) -> Iterator[WriterLock]:
        """Hold the lock for a block, e.g. from before a slow model load to the last commit, so a second
        writer is refused at once instead of after the load."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    @contextmanager
    def session(self) -> Iterator[str]:
        """One writer's turn: the lock is taken here unless the caller holds it; yields the token.

        Turns do not nest: a second writer on the same lock is refused, as one from another process is."""
        if self._in_session:
            raise StoreLockedError(
                f"store {self.root} already has a writer in this process; finish that writer first, or write "
                "to a different store path"
            )
        own = not self.held
        if own:
            self.acquire()
        self._in_session = True
        try:
            assert self.token is not None
            yield self.token
        finally:
            self._in_session = False
            if own:
                self.release()

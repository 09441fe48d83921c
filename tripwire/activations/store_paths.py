"""Opening a store's own files without following symlinks.

A store reads and writes only files inside its directory. A symlinked `index.jsonl`, `manifest.json`,
`committed.json`, lock or shard would make an append, a rewrite or a read land in some other directory, so
every such path is checked with `lstat` first (for an error that names the file and the fix) and opened
with `O_NOFOLLOW` (so a link made between the check and the open is refused too). The store directory
itself may be a link: it is the path the user chose.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from tripwire.activations.store_types import StoreUnsafePathError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)  # POSIX; the lstat check is everywhere


def unsafe_path(path: Path) -> StoreUnsafePathError:
    """The refusal of a symlink at `path`, naming where it points and what to do."""
    try:
        target = f" (to {os.readlink(path)})"
    except OSError:
        target = ""
    real = "a real directory" if path.is_dir() else "the file itself"
    return StoreUnsafePathError(
        f"{path} is a symlink{target}; a store reads and writes only files inside its own directory, so it "
        f"never follows links: replace the link with {real} (or move it out of the store), or use the store "
        "the link points into directly"
    )


def refuse_link(path: Path) -> None:
    """Raise `StoreUnsafePathError` if `path` is a symlink (a missing path is fine)."""
    if path.is_symlink():
        raise unsafe_path(path)


def refuse_links(root: Path, names: Iterable[str]) -> None:
    """Check every fixed name a store writes before anything is created or written in `root`."""
    for name in names:
        refuse_link(root / name)


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """`os.open` that refuses a symlink at `path` with `StoreUnsafePathError` instead of following it."""
    refuse_link(path)
    try:
        return os.open(path, flags | _NOFOLLOW, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:  # became a link after the check
            raise unsafe_path(path) from None
        raise


def read_nofollow(path: Path) -> bytes:
    """The bytes of the regular file at `path` (`FileNotFoundError` if there is none), never via a link."""
    with os.fdopen(open_nofollow(path, os.O_RDONLY), "rb") as f:
        return f.read()

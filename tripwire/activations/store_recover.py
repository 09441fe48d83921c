"""Crash recovery: what a writer marks before a commit, and the only files a recovering writer deletes.

Before writing a batch's shard the writer creates `.pending-<batch id>.<token>` in the store root
(fsynced), and removes it once the batch's index lines are durable. Its temp files carry the same token,
the one its lock recorded in the journal `.lock-holder` (store_lock.py). A new writer then deletes
exactly: temp files and pending marks whose token the journal recorded, and the shard of such a pending
batch that the index does not commit. A file only *named* like a temp file or mark (`.pending-mine`,
`.tmp-manifest.json.12345`: no recorded token proves a writer made it) is kept and reported with a
`StoreLeftoverWarning`, and so is everything else (notes, backups, an unindexed shard): `verify` reports
such shards as orphans, and recommitting their batch replaces them.

A crash between a batch's index append and the update of `committed.json` leaves the count one batch
behind the index: the batch is committed (the index is the commit log), so recovery rolls the count
forward. An index *behind* the count is never a crash's doing; reading it already refuses.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path
from typing import NamedTuple

from tripwire.activations.store_index import (
    LOCK_HOLDER,
    MANIFEST,
    SHARDS,
    TMP_PREFIX,
    fsync_dir,
    read_commit_count,
    read_index,
    shard_name,
    truncate_index,
    write_commit_count,
)
from tripwire.activations.store_lock import TOKEN_PATTERN, WriterLock, recorded_tokens
from tripwire.activations.store_paths import open_nofollow
from tripwire.activations.store_seal import COMMITTED, CommitCount
from tripwire.activations.store_shard import check_shards_dir
from tripwire.activations.store_types import (
    BATCH_ID_PATTERN,
    Record,
    StoreLeftoverWarning,
    StoreWriteError,
)

PENDING_PREFIX = ".pending-"
_ROOT_FILES = rf"(?:{re.escape(MANIFEST)}|{re.escape(COMMITTED)})"  # replaced via temp files (replace_file)
_PENDING_RE = re.compile(rf"{re.escape(PENDING_PREFIX)}({BATCH_ID_PATTERN})\.({TOKEN_PATTERN})")
_ROOT_TEMP_RE = re.compile(rf"{re.escape(TMP_PREFIX)}{_ROOT_FILES}\.({TOKEN_PATTERN})")
_SHARD_TEMP_RE = re.compile(
    rf"{re.escape(TMP_PREFIX)}batch-{BATCH_ID_PATTERN}\.safetensors\.({TOKEN_PATTERN})"
)  # write_shard's
# the same shapes with any suffix: kept and reported when no recorded token proves a writer made them
_ROOT_LOOKALIKE_RE = re.compile(rf"{re.escape(PENDING_PREFIX)}.+|{re.escape(TMP_PREFIX)}{_ROOT_FILES}\..+")
_SHARD_LOOKALIKE_RE = re.compile(rf"{re.escape(TMP_PREFIX)}batch-.+")


class Recovered(NamedTuple):
    records: list[Record]
    committed_end: int
    kept: list[str]  # paths (relative to the store) named like leftovers, not proven ours: left in place


def pending_name(batch_id: str, token: str) -> str:
    return f"{PENDING_PREFIX}{batch_id}.{token}"


def mark_pending(root: Path, batch_id: str, token: str) -> None:
    """Durably record that `batch_id`'s shard is about to be written, before any of it reaches disk."""
    try:
        fd = open_nofollow(root / pending_name(batch_id, token), os.O_WRONLY | os.O_CREAT)
        os.close(fd)
        fsync_dir(root)
    except OSError as e:
        raise StoreWriteError(
            f"cannot write to store {root} ({e}); fix the directory's permissions or free disk space, then "
            "rerun: committed batches are intact"
        ) from e


def clear_pending(root: Path, batch_id: str, token: str) -> None:
    """Drop the mark once the batch is committed or abandoned."""
    with contextlib.suppress(OSError):  # a stale mark is harmless: recovery never deletes a committed shard
        (root / pending_name(batch_id, token)).unlink(missing_ok=True)


def _clean(root: Path, committed: set[str], proven: set[str]) -> list[str]:
    """Delete the leftovers `proven` tokens name; return the look-alikes kept."""
    kept = []
    for entry in sorted(root.iterdir()):
        pending = _PENDING_RE.fullmatch(entry.name)
        temp = _ROOT_TEMP_RE.fullmatch(entry.name)
        if pending and pending[2] in proven:
            if pending[1] not in committed:
                (root / shard_name(pending[1])).unlink(missing_ok=True)
            entry.unlink()
        elif temp and temp[1] in proven:
            entry.unlink()
        elif _ROOT_LOOKALIKE_RE.fullmatch(entry.name):
            kept.append(entry.name)
    for entry in sorted((root / SHARDS).iterdir()):
        temp = _SHARD_TEMP_RE.fullmatch(entry.name)
        if temp and temp[1] in proven:
            entry.unlink()
        elif _SHARD_LOOKALIKE_RE.fullmatch(entry.name):
            kept.append(f"{SHARDS}/{entry.name}")
    return kept


def recover(root: Path, *, sealed: bool, lock: WriterLock) -> Recovered:
    """Undo what a crashed writer of this store left (torn index tail, its temp files, its uncommitted
    shard), and bring the commit count up to the index. `lock` must be held."""
    assert lock.token is not None, "recover runs under the writer lock"
    check_shards_dir(root)
    records, end = read_index(root, sealed=sealed)
    committed = {r.batch_id for r in records}
    count = CommitCount(len(committed), len(records))
    if read_commit_count(root, required=False) != count:  # behind (a crash), or absent (an unsealed store)
        write_commit_count(root, count, lock.token)
    try:
        truncate_index(root, end)
        kept = _clean(root, committed, recorded_tokens(root))
        lock.forget_others()
    except OSError as e:
        raise StoreWriteError(f"cannot clean up after a crashed writer in store {root}: {e}") from e
    if kept:
        warnings.warn(
            StoreLeftoverWarning(
                f"store {root}: kept {', '.join(kept)}: named like a store writer's temp file or pending "
                f"mark, but no writer of this store recorded its token (in {LOCK_HOLDER}), so it may be "
                "yours and was not deleted; if it is a leftover (e.g. of an older tripwire), delete it "
                "yourself"
            ),
            stacklevel=5,  # the caller's `with store.writer()`
        )
    return Recovered(records, end, kept)

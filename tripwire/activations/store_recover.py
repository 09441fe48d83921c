"""Crash recovery: what a writer marks before a commit, and the only files a recovering writer deletes.

Before writing a batch's shard the writer creates `.pending-<batch id>` in the store root (fsynced), and
removes it once the batch's index lines are durable. A new writer then deletes exactly: temp files named
the way this package's writers name them, and the shard of a pending batch that the index does not
commit. Anything else (notes, backups, an unindexed shard it cannot prove it was writing) is left alone;
`verify` reports such shards as orphans, and recommitting their batch replaces them.

A crash between a batch's index append and the update of `committed.json` leaves the count one batch
behind the index: the batch is committed (the index is the commit log), so recovery rolls the count
forward. An index *behind* the count is never a crash's doing; reading it already refuses.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from tripwire.activations.store_index import (
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
from tripwire.activations.store_seal import COMMITTED, CommitCount
from tripwire.activations.store_shard import check_shards_dir
from tripwire.activations.store_types import BATCH_ID_PATTERN, Record, StoreWriteError

PENDING_PREFIX = ".pending-"
_PENDING_RE = re.compile(rf"{re.escape(PENDING_PREFIX)}({BATCH_ID_PATTERN})")
_ROOT_TEMP_RE = re.compile(  # replace_file's temp files of the manifest and the commit count
    rf"{re.escape(TMP_PREFIX)}(?:{re.escape(MANIFEST)}|{re.escape(COMMITTED)})\.\d+"
)
_SHARD_TEMP_RE = re.compile(
    rf"{re.escape(TMP_PREFIX)}batch-{BATCH_ID_PATTERN}\.safetensors\.\d+"
)  # write_shard's


def mark_pending(root: Path, batch_id: str) -> None:
    """Durably record that `batch_id`'s shard is about to be written, before any of it reaches disk."""
    try:
        fd = os.open(root / f"{PENDING_PREFIX}{batch_id}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
        fsync_dir(root)
    except OSError as e:
        raise StoreWriteError(
            f"cannot write to store {root} ({e}); fix the directory's permissions or free disk space, then "
            "rerun: committed batches are intact"
        ) from e


def clear_pending(root: Path, batch_id: str) -> None:
    """Drop the mark once the batch is committed or abandoned."""
    with contextlib.suppress(OSError):  # a stale mark is harmless: recovery never deletes a committed shard
        (root / f"{PENDING_PREFIX}{batch_id}").unlink(missing_ok=True)


def recover(root: Path, *, sealed: bool) -> tuple[list[Record], int]:
    """Undo what a crashed writer left (torn index tail, its temp files, its uncommitted shard), and bring
    the commit count up to the index."""
    check_shards_dir(root)
    records, end = read_index(root, sealed=sealed)
    committed = {r.batch_id for r in records}
    count = CommitCount(len(committed), len(records))
    if read_commit_count(root, required=False) != count:  # behind (a crash), or absent (an unsealed store)
        write_commit_count(root, count)
    try:
        truncate_index(root, end)
        for entry in sorted(root.iterdir()):
            pending = _PENDING_RE.fullmatch(entry.name)
            if pending and pending[1] not in committed:
                (root / shard_name(pending[1])).unlink(missing_ok=True)
            if pending or _ROOT_TEMP_RE.fullmatch(entry.name):
                entry.unlink()
        for entry in sorted((root / SHARDS).iterdir()):
            if _SHARD_TEMP_RE.fullmatch(entry.name):
                entry.unlink()
    except OSError as e:
        raise StoreWriteError(f"cannot clean up after a crashed writer in store {root}: {e}") from e
    return records, end

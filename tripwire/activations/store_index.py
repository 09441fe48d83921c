"""The store's metadata files: manifest, append-only record index, and the writer lock.

Durability protocol: the index is the commit log. A batch's lines are appended with one buffer write
and an fsync; every line carries its batch id and the batch's record count, so a reader can tell a
complete batch from one torn by a crash and ignore (a writer: truncate) the torn tail. A batch's shard
is always `shards/batch-<batch id>.safetensors`; an index line naming any other path is refused, so reads
never leave the store. Every read also checks the index's seals (store_seal.py): each line's checksum and
the count of committed batches in `committed.json`, which is replaced after each batch's lines are durable.
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from tripwire.activations.store_seal import (
    COMMITTED,
    CommitCount,
    check_commit_count,
    check_line,
    missing_commit_count,
    parse_commit_count,
    seal_line,
    warn_unsealed,
)
from tripwire.activations.store_types import (
    BATCH_ID_PATTERN,
    BATCH_ID_RE,
    SCHEMA_VERSION,
    UNSEALED_SCHEMA_VERSION,
    Record,
    StoreCorruptError,
    StoreLockedError,
    StoreManifest,
    StoreNotFoundError,
    StoreWriteError,
)

MANIFEST = "manifest.json"
INDEX = "index.jsonl"
LOCK = ".lock"
LOCK_HOLDER = ".lock-holder"
SHARDS = "shards"
TMP_PREFIX = ".tmp-"
SHARD_FILE_RE = re.compile(rf"batch-{BATCH_ID_PATTERN}\.safetensors")


def shard_name(batch_id: str) -> str:
    """The one place a batch's rows may live, relative to the store root."""
    return f"{SHARDS}/batch-{batch_id}.safetensors"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """`os.write` until done: a short write (e.g. at a file-size limit) must not pass silently."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n == 0:
            raise OSError(errno.ENOSPC, "write made no progress")
        view = view[n:]


def replace_file(root: Path, name: str, data: bytes, what: str) -> None:
    """Atomically replace `root/name` (temp file, fsync, rename, fsync dir): readers see old or new."""
    tmp = root / f"{TMP_PREFIX}{name}.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, root / name)
        fsync_dir(root)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreWriteError(f"cannot write the {what} of store {root}: {e}") from e


def write_manifest(root: Path, manifest: StoreManifest) -> None:
    replace_file(root, MANIFEST, (json.dumps(asdict(manifest), indent=2) + "\n").encode(), "manifest")


def write_commit_count(root: Path, count: CommitCount) -> None:
    """Record what is committed; call only once the batches it counts are durable in the index."""
    what = f"commit count ({COMMITTED}; batches already in the index stay committed: a rerun repairs it)"
    replace_file(root, COMMITTED, count.to_bytes(), what)


def read_commit_count(root: Path, *, required: bool) -> CommitCount | None:
    """The committed count, or None for an unsealed store without one; a sealed store must have it."""
    path = root / COMMITTED
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise missing_commit_count(root) from None
        return None
    return parse_commit_count(path, data)


def read_manifest(root: Path) -> StoreManifest:
    path = root / MANIFEST
    if not path.is_file():
        raise StoreNotFoundError(
            f"{root} is not a ResidualStore (no {MANIFEST}); create one with ResidualStore.create"
        )
    fix = "restore it from a backup or recapture into a new store"
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreCorruptError(f"{path} is not valid JSON ({e}); {fix}") from None
    if not isinstance(data, dict):
        raise StoreCorruptError(f"{path} must hold a JSON object, not {type(data).__name__}; {fix}")
    if data.get("schema_version") not in (SCHEMA_VERSION, UNSEALED_SCHEMA_VERSION):
        raise StoreCorruptError(
            f"store {root} has schema_version {data.get('schema_version')!r}; this tripwire reads "
            f"versions {UNSEALED_SCHEMA_VERSION} and {SCHEMA_VERSION}: use the matching tripwire version or "
            "recapture"
        )
    names = {f.name for f in fields(StoreManifest)}
    required = {f.name for f in fields(StoreManifest) if f.default is MISSING}
    if unknown := sorted(set(data) - names):
        raise StoreCorruptError(f"{path} has unknown keys {unknown}; {fix}")
    if missing := sorted(required - set(data)):
        raise StoreCorruptError(f"{path} lacks {missing}; {fix}")
    return StoreManifest(**data)


def index_line(record: Record, batch_n_records: int) -> bytes:
    return seal_line({**record.to_json(), "batch_n_records": batch_n_records})


def read_index(root: Path, *, sealed: bool) -> tuple[list[Record], int]:
    """Records of all complete batches, and the byte offset where the complete batches end.

    Refuses (`StoreIntegrityError`) a line whose checksum does not match, and an index holding fewer
    batches or records than `committed.json` counts; `sealed` stores must have both seals.
    """
    path = root / INDEX
    if not sealed:
        warn_unsealed(root)
    count = read_commit_count(root, required=sealed)  # before the index: a commit in between only adds lines
    data = path.read_bytes() if path.exists() else b""
    records: list[Record] = []
    group: list[Record] = []
    group_size = 0
    committed_end = 0
    seen_batches: set[str] = set()
    pos = line_no = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # torn last line: a crash mid-append
        line = data[pos:nl]
        line_no += 1
        try:
            obj = json.loads(line)
            n_in_batch = int(obj["batch_n_records"])
            record = Record.from_json(obj)
        except (ValueError, KeyError, TypeError) as e:
            if nl + 1 == len(data):
                break  # the last line is garbage: torn (e.g. a partially persisted page)
            raise StoreCorruptError(
                f"{path}: line at byte {pos} is not a valid record ({e}); the index was edited or damaged: "
                "restore it from a backup or recapture into a new store"
            ) from e
        check_line(obj, sealed=sealed, path=path, line_no=line_no)  # a complete line is never torn
        batch_ok = isinstance(record.batch_id, str) and BATCH_ID_RE.fullmatch(record.batch_id)
        if not batch_ok or record.shard != shard_name(record.batch_id):
            raise StoreCorruptError(
                f"{path}: line at byte {pos} puts batch {record.batch_id!r} in shard {record.shard!r}, "
                f"not {shard_name(record.batch_id)!r} inside the store; the index was edited or damaged: "
                "restore it from a backup or recapture into a new store"
            )
        if group and record.batch_id != group[0].batch_id:
            raise StoreCorruptError(
                f"{path}: batch {group[0].batch_id} is incomplete but batch {record.batch_id} follows it; "
                "the index was edited or damaged: restore it from a backup or recapture"
            )
        if not group:
            if record.batch_id in seen_batches:
                raise StoreCorruptError(f"{path}: batch {record.batch_id} appears twice; recapture")
            group_size = n_in_batch
        group.append(record)
        pos = nl + 1
        if len(group) == group_size:
            records.extend(group)
            seen_batches.add(group[0].batch_id)
            group = []
            committed_end = pos
    if count is not None:
        check_commit_count(root, count, len(seen_batches), len(records))
    return records, committed_end


def truncate_index(root: Path, size: int) -> None:
    """Drop a torn tail so the next append starts on a batch boundary."""
    path = root / INDEX
    if path.exists() and path.stat().st_size > size:
        with open(path, "r+b") as f:
            f.truncate(size)
            os.fsync(f.fileno())


def append_index(root: Path, lines: bytes) -> None:
    """Append a batch's lines in one write + fsync; on failure restore the previous length."""
    path = root / INDEX
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as e:
        raise StoreWriteError(f"cannot open the index of store {root} for appending: {e}") from e
    try:
        size_before = os.fstat(fd).st_size
        try:
            write_all(fd, lines)
            os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, size_before)
                os.fsync(fd)
            except OSError:
                pass  # the torn tail is dropped on the next writer open instead
            raise StoreWriteError(f"cannot append to the index of store {root}: {e}") from e
    finally:
        os.close(fd)


class WriterLock:
    """Exclusive, non-blocking `filelock` on `<store>/.lock` (an flock: a killed holder releases it).

    The holder's pid goes to `<store>/.lock-holder`, not the lock file, which other openers may truncate.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        # not thread-local: like the flock it replaces, the lock belongs to the process, not a thread
        self._lock = FileLock(str(root / LOCK), timeout=0, mode=0o644, thread_local=False)

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except Timeout:
            raise StoreLockedError(
                f"store {self.root} is being written by another process (pid {self._holder()}); wait for it "
                "to finish or stop it, or write to a different store path"
            ) from None
        except OSError as e:
            raise StoreWriteError(f"cannot open the lock file of store {self.root}: {e}") from e
        try:
            (self.root / LOCK_HOLDER).write_text(f"{os.getpid()}\n")
        except OSError:
            pass  # the pid is only informative; the lock is what excludes other writers

    def _holder(self) -> str:
        try:
            return (self.root / LOCK_HOLDER).read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            (self.root / LOCK_HOLDER).unlink(missing_ok=True)
        except OSError:
            pass  # a stale pid only misnames the holder in a refusal message
        self._lock.release()

"""The store's metadata files: manifest and append-only record index (the writer lock: store_lock.py).

Durability protocol: the index is the commit log. A batch's lines are appended with one buffer write
and an fsync; every line carries its batch id and the batch's record count, so a reader can tell a
complete batch from one torn by a crash and ignore (a writer: truncate) the torn tail. A batch's shard
is always `shards/batch-<batch id>.safetensors`; an index line naming any other path is refused, so reads
never leave the store. Every read also checks the index's seals (store_seal.py): each line's checksum and
the count of committed batches in `committed.json`, which is replaced after each batch's lines are durable.
None of these files is read or written through a symlink (store_paths.py).
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

from tripwire.activations.store_paths import open_nofollow, read_nofollow, refuse_link
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
STORE_FILES = (MANIFEST, INDEX, COMMITTED, LOCK, LOCK_HOLDER, SHARDS)  # fixed names: none may be a symlink


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


def temp_name(name: str, token: str) -> str:
    """A writer's temp file for `name`: the token (recorded in the lock's journal) proves whose it is."""
    return f"{TMP_PREFIX}{name}.{token}"


def replace_file(root: Path, name: str, data: bytes, what: str, token: str) -> None:
    """Atomically replace `root/name` (temp file, fsync, rename, fsync dir): readers see old or new.

    A symlink at `root/name` is refused, not replaced: it is not the store's file."""
    refuse_link(root / name)
    tmp = root / temp_name(name, token)
    try:
        fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
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


def write_manifest(root: Path, manifest: StoreManifest, token: str) -> None:
    replace_file(root, MANIFEST, (json.dumps(asdict(manifest), indent=2) + "\n").encode(), "manifest", token)


def write_commit_count(root: Path, count: CommitCount, token: str) -> None:
    """Record what is committed; call only once the batches it counts are durable in the index."""
    what = f"commit count ({COMMITTED}; batches already in the index stay committed: a rerun repairs it)"
    replace_file(root, COMMITTED, count.to_bytes(), what, token)


def init_store_files(root: Path, manifest: StoreManifest, token: str) -> None:
    """A new store's `shards/` and files, under its writer lock; the count goes first, as a manifest marks a
    whole store."""
    try:
        (root / SHARDS).mkdir(exist_ok=True)
    except OSError as e:
        raise StoreWriteError(
            f"cannot create {root / SHARDS}: {e}; set the store path to a writable location"
        ) from e
    write_commit_count(root, CommitCount(0, 0), token)
    write_manifest(root, manifest, token)


def read_commit_count(root: Path, *, required: bool) -> CommitCount | None:
    """The committed count, or None for an unsealed store without one; a sealed store must have it."""
    path = root / COMMITTED
    try:
        data = read_nofollow(path)
    except FileNotFoundError:
        if required:
            raise missing_commit_count(root) from None
        return None
    return parse_commit_count(path, data)


def read_manifest(root: Path) -> StoreManifest:
    path = root / MANIFEST
    refuse_link(path)
    if not path.is_file():
        raise StoreNotFoundError(
            f"{root} is not a ResidualStore (no {MANIFEST}); create one with ResidualStore.create"
        )
    fix = "restore it from a backup or recapture into a new store"
    try:
        data: Any = json.loads(read_nofollow(path).decode("utf-8"))
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
    try:
        data = read_nofollow(path)
    except FileNotFoundError:
        data = b""
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
    refuse_link(path)
    if not path.exists() or path.stat().st_size <= size:
        return  # nothing to drop: no need to open (or be allowed to write) the index
    fd = open_nofollow(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def append_index(root: Path, lines: bytes) -> None:
    """Append a batch's lines in one write + fsync; on failure restore the previous length."""
    path = root / INDEX
    try:
        fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
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


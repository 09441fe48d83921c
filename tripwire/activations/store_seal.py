"""Sealing the index: every line's own checksum, and the count of committed batches and records.

Shard checksums live in the index, so they cannot see an edit of the index itself (a flipped label,
positions shifted by one, a deleted tail). Hence two seals, both checked on every read of the index:

- every line carries `line_sha256`, the sha256 of the line's canonical JSON without that field;
- `committed.json` holds how many batches and records were committed. It is replaced atomically only
  after a batch's index lines are durable, so a crash leaves the index at or *ahead* of the count (a
  writer's recovery rolls the count forward), never behind: an index holding fewer was cut short.
  Readers read the count before the index, so a commit in between cannot look like a cut.

Stores written before sealing (schema_version 1) have neither seal: they open as unsealed, with a
one-time `StoreUnsealedWarning`. Lines a newer writer appends to them are sealed and checked all the same.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tripwire.activations.store_types import (
    StoreCorruptError,
    StoreIntegrityError,
    StoreUnsealedWarning,
    canonical_json,
)

LINE_SHA256 = "line_sha256"
COMMITTED = "committed.json"
_RECOVER = "restore index.jsonl from a backup, or re-capture (rerun the same capture) into a new store path"
_warned_unsealed: set[str] = set()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def seal_line(obj: dict[str, Any]) -> bytes:
    """One index line: `obj` as canonical JSON plus the checksum of exactly that content."""
    return (canonical_json({**obj, LINE_SHA256: _sha256(canonical_json(obj))}) + "\n").encode()


def check_line(obj: dict[str, Any], *, sealed: bool, path: Path, line_no: int) -> None:
    """Pop and check `obj`'s checksum; a line without one is refused only in a sealed store."""
    recorded = obj.pop(LINE_SHA256, None)
    where = f"{path}: line {line_no} (record {obj.get('record_id')!r})"
    if recorded is None:
        if sealed:
            raise StoreIntegrityError(
                f"{where} has no checksum ({LINE_SHA256}) although the store is sealed: the index was edited "
                f"or damaged after it was written, so its labels and positions cannot be trusted; {_RECOVER}"
            )
        return
    if _sha256(canonical_json(obj)) != recorded:
        raise StoreIntegrityError(
            f"{where} does not match the checksum written with it: the index was edited or damaged after it "
            f"was written (a changed label, position or row range would silently change results); {_RECOVER}"
        )


@dataclass(frozen=True)
class CommitCount:
    """How many batches and records the writers committed, as `committed.json` records it."""

    batches: int
    records: int

    def to_bytes(self) -> bytes:
        return (canonical_json({"batches": self.batches, "records": self.records}) + "\n").encode()


def parse_commit_count(path: Path, data: bytes) -> CommitCount:
    fix = "restore it from a backup, or re-capture into a new store path (the index alone is not trusted)"
    try:
        obj: Any = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreCorruptError(f"{path} is not valid JSON ({e}); {fix}") from None
    valid = (
        isinstance(obj, dict)
        and set(obj) == {"batches", "records"}
        and all(type(v) is int and v >= 0 for v in obj.values())
    )
    if not valid:
        raise StoreCorruptError(
            f'{path} must hold {{"batches": <int>, "records": <int>}}, not {obj!r}; {fix}'
        )
    return CommitCount(obj["batches"], obj["records"])


def missing_commit_count(root: Path) -> StoreIntegrityError:
    return StoreIntegrityError(
        f"store {root} is sealed but {root / COMMITTED} is missing: it records how many batches were "
        "committed, and without it an index cut short cannot be told from a complete one; restore it from a "
        "backup, or re-capture into a new store path"
    )


def check_commit_count(root: Path, count: CommitCount, batches: int, records: int) -> None:
    """Refuse an index holding fewer batches or records than were committed (its tail was lost)."""
    if batches < count.batches or records < count.records:
        raise StoreIntegrityError(
            f"store {root}: {root / 'index.jsonl'} holds {records} records of {count.records} committed "
            f"({batches} of {count.batches} batches, per {root / COMMITTED}); the index tail is missing (cut "
            "short, or an older copy restored), so reads would silently use a subset; the missing batches' "
            f"shards are still in shards/: {_RECOVER}"
        )


def warn_unsealed(root: Path) -> None:
    """Say once per store and process that its index cannot be checked."""
    key = str(root.resolve())
    if key in _warned_unsealed:
        return
    _warned_unsealed.add(key)
    warnings.warn(
        StoreUnsealedWarning(
            f"store {root} is unsealed (written before index sealing, schema_version 1): an edited label or "
            "position in its index.jsonl, or a cut-short index, cannot be detected; re-capture into a new "
            "store to seal it"
        ),
        stacklevel=3,
    )

"""Records, manifest and errors of the on-disk activation store (`ResidualStore`).

Kept free of I/O so the types can be shared by the store, the runner and capture code.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from tripwire.errors import TripwireError

SCHEMA_VERSION = 2  # 2: index lines carry `line_sha256` and `committed.json` counts commits (sealed)
UNSEALED_SCHEMA_VERSION = 1  # written before sealing: still read, as unsealed
StoreDtype = Literal["float16", "bfloat16", "float32"]
STORE_DTYPES: tuple[StoreDtype, ...] = ("float16", "bfloat16", "float32")
BATCH_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
BATCH_ID_RE = re.compile(BATCH_ID_PATTERN)


class StoreError(TripwireError, RuntimeError):
    """Base class of store failures."""


class StoreLockedError(StoreError):
    """Another process holds the store's writer lock."""


class StoreMismatchError(StoreError, ValueError):
    """Appending would mix activations of different models, dtypes, widths or hook sets."""


class StoreWriteError(StoreError, OSError):
    """Writing failed (disk full, read-only directory); the store is left as it was before."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """The path holds no store (no manifest)."""


class StoreCorruptError(StoreError):
    """The store's files are damaged in a way a crash cannot produce."""


class StoreIntegrityError(StoreCorruptError):
    """Stored bytes differ from what was sealed when they were written: a shard's checksum, an index
    line's own checksum, or the count of committed records (an index cut short)."""


class StoreUnsafePathError(StoreCorruptError):
    """A file or directory the store reads or writes is a symlink: following it would read another
    directory's data or write outside the store."""


class StoreLeftoverWarning(TripwireError, UserWarning):
    """A resuming writer kept files named like a writer's temp files or pending marks, because no writer of
    this store recorded their token: they may be someone's own files."""


class StoreUnsealedWarning(TripwireError, UserWarning):
    """The store predates index sealing: edited index lines or a cut-short index cannot be detected.

    A `TripwireError` too, so `-W error::tripwire...StoreUnsealedWarning` makes the CLI refuse such stores
    with one clear line."""


class StoreRecordError(StoreError, ValueError):
    """A record or batch handed to the store is malformed or already stored."""


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal values always hash equally."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_id(
    model_fingerprint: str,
    conversation_key: str,
    sampling_params: dict[str, Any],
    sample_index: int,
    seed: int,
) -> str:
    """Deterministic id of one sampled conversation: a rerun of the same config gets the same ids."""
    payload = canonical_json(
        {
            "model": model_fingerprint,
            "conversation": conversation_key,
            "sampling": sampling_params,
            "sample_index": sample_index,
            "seed": seed,
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def check_batch_id(batch_id: str) -> None:
    if not BATCH_ID_RE.fullmatch(batch_id):
        raise StoreRecordError(
            f"batch_id {batch_id!r} must be 1-64 characters of [A-Za-z0-9_-] (it names a shard file)"
        )


@dataclass(frozen=True, kw_only=True)
class RecordMeta:
    """One conversation as handed to the store; `positions` are the token indices with stored rows."""

    record_id: str
    condition_id: str
    sample_index: int
    seed: int
    sampling: dict[str, Any]
    token_ids: list[int]
    text: str
    n_prompt_tokens: int
    positions: list[int]
    scaffold_mask: list[bool]
    labels: dict[str, int] = field(default_factory=dict)
    outcome: dict[str, Any] | None = None
    action_token_index: int | None = None
    token_char_spans: list[list[int]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    def validate(self) -> None:
        """Raise `StoreRecordError` naming the first inconsistent field."""
        n = self.n_tokens
        where = f"record {self.record_id!r}"
        problems = []
        if not 0 <= self.n_prompt_tokens <= n:
            problems.append(f"n_prompt_tokens={self.n_prompt_tokens} is outside [0, {n}]")
        if len(self.scaffold_mask) != n:
            problems.append(f"scaffold_mask has {len(self.scaffold_mask)} entries for {n} tokens")
        if any(b - a <= 0 for a, b in zip(self.positions, self.positions[1:], strict=False)):
            problems.append("positions must be strictly increasing")
        if self.positions and not (0 <= self.positions[0] and self.positions[-1] < n):
            problems.append(f"positions must lie in [0, {n})")
        if self.action_token_index is not None and not 0 <= self.action_token_index < n:
            problems.append(f"action_token_index={self.action_token_index} is outside [0, {n})")
        if self.token_char_spans is not None and len(self.token_char_spans) != n:
            problems.append(f"token_char_spans has {len(self.token_char_spans)} entries for {n} tokens")
        if any(not isinstance(v, int) or isinstance(v, bool) for v in self.labels.values()):
            problems.append("labels must map names to ints")
        if problems:
            raise StoreRecordError(f"{where}: " + "; ".join(problems) + "; fix the record before committing")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Record(RecordMeta):
    """A stored record: its metadata plus where its rows live and their checksums."""

    batch_id: str
    shard: str
    shard_sha256: str
    row_offset: int
    row_count: int
    rows_sha256: str

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Record:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})


@dataclass(frozen=True)
class StoreManifest:
    """What every row of a store shares; appends that differ are refused."""

    model_name: str
    model_fingerprint: str
    hook_points: list[str]
    d_model: int
    dtype: StoreDtype
    created_at: str
    tripwire_version: str
    schema_version: int = SCHEMA_VERSION

    def mismatches(self, other: StoreManifest) -> list[str]:
        """Human-readable differences that make `other` incompatible with this store."""
        diffs = []
        for name in ("model_fingerprint", "dtype", "d_model", "hook_points"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                diffs.append(f"{name}: store has {mine!r}, got {theirs!r}")
        return diffs


@dataclass(frozen=True)
class StoreProblem:
    """One finding of `ResidualStore.verify`."""

    kind: Literal[
        "missing_shard",
        "checksum_mismatch",
        "unreadable_shard",
        "bad_row_range",
        "orphan_shard",
        "unsafe_path",
    ]
    shard: str
    detail: str
    record_ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        affected = f" (affected records: {', '.join(self.record_ids)})" if self.record_ids else ""
        return f"{self.kind}: {self.shard}: {self.detail}{affected}"

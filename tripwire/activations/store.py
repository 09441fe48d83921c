"""`ResidualStore`: an append-only, crash-safe directory of residual-stream activations.

Layout: `manifest.json` (what all rows share), `index.jsonl` (one sealed JSON record per line, the commit
log), `committed.json` (batches and records committed), `shards/batch-<id>.safetensors` (one tensor per
hook point, token-major). A batch is committed whole: marked pending, shard written and renamed into place,
index lines appended in one write, count bumped; a crash leaves it fully committed or not at all. Reads check
the index against its seals (store_seal.py) and each shard against the index before trusting its rows.
No store file is opened through a symlink; recovery deletes only files a writer's token proves it made.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from tripwire import __version__
from tripwire.activations.positions import PositionPolicy
from tripwire.activations.store_deep import shard_header
from tripwire.activations.store_index import (
    MANIFEST,
    STORE_FILES,
    append_index,
    index_line,
    init_store_files,
    read_index,
    read_manifest,
    shard_name,
    truncate_index,
    write_commit_count,
)
from tripwire.activations.store_lock import WriterLock
from tripwire.activations.store_paths import refuse_links
from tripwire.activations.store_query import QueryResult, iter_query, query_all, stored_rows_for
from tripwire.activations.store_recover import clear_pending, mark_pending, recover
from tripwire.activations.store_seal import CommitCount
from tripwire.activations.store_shard import check_shard_bytes, read_rows, rows_sha256, write_shard
from tripwire.activations.store_types import (
    SCHEMA_VERSION,
    STORE_DTYPES,
    Record,
    RecordMeta,
    StoreDtype,
    StoreManifest,
    StoreMismatchError,
    StoreProblem,
    StoreRecordError,
    StoreWriteError,
    canonical_json,
    check_batch_id,
)
from tripwire.activations.store_verify import check_layout, records_digest, verify_store

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
}


class ResidualStore:
    """Read access to a store; `writer()` adds the (single) writer. Build with `create` or `open`."""

    def __init__(self, root: Path, manifest: StoreManifest) -> None:
        self.root = root
        self.manifest = manifest
        self.sealed = manifest.schema_version >= SCHEMA_VERSION  # False: written before index sealing
        self._records, self._committed_end = read_index(root, sealed=self.sealed)
        self._groups: tuple[tuple[int, int], dict[str, Record], dict[str, list[Record]]] | None = None
        self._layout_ok: set[str] = set()  # shards whose records were checked to tile them
        self._lock: WriterLock | None = None  # the held lock create() was handed: writers write under it

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        model_name: str,
        model_fingerprint: str,
        hook_points: Sequence[str],
        d_model: int,
        dtype: StoreDtype = "float16",
        lock: WriterLock | None = None,
    ) -> ResidualStore:
        """Create a store, or open the existing one at `path` if it is compatible. `lock`: the store's
        `WriterLock` if the caller holds it already (taken before a slow model load): writers use it."""
        root = Path(path)
        if dtype not in STORE_DTYPES:
            raise ValueError(f"dtype {dtype!r} is not supported; use one of {STORE_DTYPES}")
        if not hook_points or len(set(hook_points)) != len(hook_points) or not all(hook_points):
            raise ValueError(f"hook_points {list(hook_points)!r} must be a non-empty list of distinct names")
        if d_model < 1:
            raise ValueError(f"d_model={d_model} must be >= 1")
        wanted = StoreManifest(
            model_name=model_name,
            model_fingerprint=model_fingerprint,
            hook_points=list(hook_points),
            d_model=d_model,
            dtype=dtype,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            tripwire_version=__version__,
        )
        refuse_links(root, STORE_FILES)
        if not (root / MANIFEST).exists():
            with (lock or WriterLock(root)).session() as token:
                if not (root / MANIFEST).exists():
                    init_store_files(root, wanted, token)
        store = cls.open(root)
        store._lock = lock
        diffs = store.manifest.mismatches(wanted)
        if diffs:
            raise StoreMismatchError(
                f"store {root} holds different activations ({'; '.join(diffs)}); "
                "write these activations to a new store path"
            )
        return store

    @classmethod
    def open(cls, path: str | Path) -> ResidualStore:
        """Open an existing store for reading (a crash's torn index tail is ignored)."""
        root = Path(path)
        return cls(root, read_manifest(root))

    @contextmanager
    def writer(self) -> Iterator[StoreWriter]:
        """Take the exclusive writer lock (else `StoreLockedError`) or use create's, recover, append."""
        lock = self._lock or WriterLock(self.root)
        with lock.session():
            yield StoreWriter(self, lock)

    # ---- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def records(self, where: Callable[[Record], bool] | None = None) -> list[Record]:
        """Committed records in index order, optionally filtered."""
        return [r for r in self._records if where is None or where(r)]

    def done_record_ids(self) -> set[str]:
        return {r.record_id for r in self._records}

    def done_batch_ids(self) -> set[str]:
        return {r.batch_id for r in self._records}

    def _check_hook(self, hook_point: str) -> None:
        if hook_point not in self.manifest.hook_points:
            raise KeyError(
                f"hook point {hook_point!r} is not stored; this store has {self.manifest.hook_points}"
            )

    def activations(
        self, record: Record, hook_point: str, positions: PositionPolicy | None = None
    ) -> Float[Tensor, "tok d_model"]:
        """Stored rows of one record (all, or those `positions` selects), in token order."""
        self._check_hook(hook_point)
        _, local = stored_rows_for(record, positions)
        rows = read_rows(self.shard_file(record.shard), hook_point, record.row_offset, record.row_count)
        return rows[local]

    def _grouped(self) -> tuple[dict[str, Record], dict[str, list[Record]]]:
        """Records by id and by shard (index order), rebuilt only when the record list changed."""
        key = (id(self._records), len(self._records))
        if self._groups is None or self._groups[0] != key:
            by_shard: dict[str, list[Record]] = {}
            for r in self._records:
                by_shard.setdefault(r.shard, []).append(r)
            self._groups = (key, {r.record_id: r for r in self._records}, by_shard)
        return self._groups[1], self._groups[2]

    def shard_file(self, shard: str) -> Path:
        """Path of committed shard `record.shard`, once its bytes and row layout match the index.

        Open shards only through this: the sha256 is computed once per file version per process.
        """
        records = self._grouped()[1].get(shard)
        if records is None:
            raise StoreRecordError(
                f"shard {shard!r} is not committed in store {self.root}; read records from this store's "
                "records()"
            )
        path = check_shard_bytes(self.root, shard, records[0].shard_sha256)
        if shard not in self._layout_ok:
            check_layout(self.root, shard, records, path, self.manifest)
            self._layout_ok.add(shard)
        return path

    def content_digest(self, records: Iterable[Record]) -> str:
        """sha256 of which stored rows `records` hold, for provenance (a probe card's training-data hash).

        Same records in any order or repetition give the same digest; their shards are checked against
        their checksums first (once per process), so the digest speaks for the bytes on disk.
        """
        by_id, _ = self._grouped()
        chosen = {r.record_id: r for r in records}
        for r in chosen.values():
            if by_id.get(r.record_id) != r:
                raise StoreRecordError(
                    f"record {r.record_id!r} is not stored in {self.root} as given; pass records from this "
                    "store's records()"
                )
        for shard in sorted({r.shard for r in chosen.values()}):
            self.shard_file(shard)
        return records_digest(chosen.values())

    def _select(self, label: str | None, condition: str | Collection[str] | None) -> list[tuple[int, Record]]:
        conditions = {condition} if isinstance(condition, str) else condition
        return [
            (i, r)
            for i, r in enumerate(self._records)
            if (label is None or label in r.labels) and (conditions is None or r.condition_id in conditions)
        ]

    def query(
        self,
        hook_point: str,
        *,
        label: str | None = None,
        condition: str | Collection[str] | None = None,
        policy: PositionPolicy | None = None,
    ) -> QueryResult:
        """All selected rows as `(X, y, record_index, token_index)`; records lacking `label` are skipped."""
        self._check_hook(hook_point)
        return query_all(
            self.shard_file,
            hook_point,
            self._select(label, condition),
            policy=policy,
            label=label,
            d_model=self.manifest.d_model,
            dtype=TORCH_DTYPES[self.manifest.dtype],
        )

    def iter_batches(
        self,
        hook_point: str,
        batch_rows: int,
        *,
        label: str | None = None,
        condition: str | Collection[str] | None = None,
        policy: PositionPolicy | None = None,
    ) -> Iterator[QueryResult]:
        """Like `query`, streamed in chunks of at most `batch_rows` rows (for stores larger than RAM)."""
        self._check_hook(hook_point)
        return iter_query(
            self.shard_file,
            hook_point,
            self._select(label, condition),
            policy=policy,
            label=label,
            batch_rows=batch_rows,
            d_model=self.manifest.d_model,
            dtype=TORCH_DTYPES[self.manifest.dtype],
        )

    def info(self) -> dict[str, Any]:
        """Counts and sizes; `bytes_per_raw` is shard bytes over the raw size of the rows (ideal 1.0)."""
        m = self.manifest
        rows = sum(r.row_count for r in self._records)
        shard_bytes = sum(
            (self.root / s).stat().st_size for s in self._grouped()[1] if (self.root / s).exists()
        )
        index_bytes = self._committed_end
        raw = rows * len(m.hook_points) * m.d_model * TORCH_DTYPES[m.dtype].itemsize
        labels: dict[str, Counter[str]] = {}
        outcomes: dict[str, Counter[str]] = {}
        for r in self._records:
            for name, value in r.labels.items():
                labels.setdefault(name, Counter())[str(value)] += 1
            for key in ("action", "harmful"):  # what a person asks of outcomes; not spans or tool calls
                if r.outcome is not None and key in r.outcome:
                    value = r.outcome[key]
                    outcomes.setdefault(key, Counter())[
                        value if isinstance(value, str) else canonical_json(value)
                    ] += 1
        return {
            "path": str(self.root),
            "model_name": m.model_name,
            "model_fingerprint": m.model_fingerprint,
            "dtype": m.dtype,
            "d_model": m.d_model,
            "hook_points": list(m.hook_points),
            "records": len(self._records),
            "batches": len(self._grouped()[1]),
            "tokens": sum(r.n_tokens for r in self._records),
            "rows": rows,
            "shard_bytes": shard_bytes,
            "index_bytes": index_bytes,
            "bytes_per_raw": shard_bytes / raw if raw else None,
            "bytes_per_raw_with_index": (shard_bytes + index_bytes) / raw if raw else None,
            "label_counts": {k: dict(v) for k, v in labels.items()},
            "outcome_counts": {k: dict(v) for k, v in outcomes.items()},
            "records_without_outcome": sum(r.outcome is None for r in self._records),
            "sealed": self.sealed,
        }

    def verify(self) -> list[StoreProblem]:
        """Full check: every shard's sha256 and row layout, unsafe paths, uncommitted (orphan) shards."""
        return verify_store(self.root, self.manifest, self._grouped()[1])


class StoreWriter:
    """Appends whole batches; exists only while `ResidualStore.writer()` holds the lock."""

    def __init__(self, store: ResidualStore, lock: WriterLock) -> None:
        assert lock.token is not None, "a StoreWriter exists only under the held lock"
        self.store = store
        self._token = lock.token  # names this writer's temp files and pending marks
        recovered = recover(store.root, sealed=store.sealed, lock=lock)
        store._records, store._committed_end = recovered.records, recovered.committed_end
        self.kept = recovered.kept  # files named like a writer's leftovers, not proven ours: left in place

    def _prepare_rows(self, rows: dict[str, Tensor], n_rows: int) -> dict[str, Float[Tensor, "rows d_model"]]:
        m = self.store.manifest
        if set(rows) != set(m.hook_points):
            raise StoreMismatchError(
                f"rows are for hook points {sorted(rows)} but the store holds {m.hook_points}; "
                "capture exactly the store's hook points or write to a new store path"
            )
        prepared = {}
        for hook in m.hook_points:
            t = rows[hook]
            if t.ndim != 2 or t.shape != (n_rows, m.d_model) or not t.is_floating_point():
                raise StoreMismatchError(
                    f"rows[{hook!r}] has shape {tuple(t.shape)} dtype {t.dtype}; expected float "
                    f"({n_rows}, {m.d_model}) = (sum of len(record.positions), d_model)"
                )
            prepared[hook] = t.detach().to(device="cpu", dtype=TORCH_DTYPES[m.dtype]).contiguous()
        return prepared

    def commit_batch(
        self, batch_id: str, records: Sequence[RecordMeta], rows: dict[str, Float[Tensor, "rows d_model"]]
    ) -> list[Record]:
        """Durably append one batch: `rows[hook]` holds each record's `positions` rows, in record order."""
        check_batch_id(batch_id)
        store = self.store
        if not records:
            raise StoreRecordError(f"batch {batch_id} has no records; skip empty batches")
        if batch_id in store.done_batch_ids():
            raise StoreRecordError(
                f"batch {batch_id} is already committed; skip done batches (done_batch_ids)"
            )
        ids = [r.record_id for r in records]
        dup = (set(ids) & store.done_record_ids()) | {i for i, n in Counter(ids).items() if n > 1}
        if dup:
            raise StoreRecordError(
                f"records {sorted(dup)[:5]} are already stored or repeated in batch {batch_id}; "
                "skip done records (done_record_ids) so nothing is duplicated"
            )
        for r in records:
            r.validate()
        n_rows = sum(len(r.positions) for r in records)
        prepared = self._prepare_rows(dict(rows), n_rows)
        mark_pending(store.root, batch_id, self._token)
        try:
            return self._write_and_append(batch_id, records, prepared)
        finally:
            clear_pending(store.root, batch_id, self._token)

    def _write_and_append(
        self, batch_id: str, records: Sequence[RecordMeta], prepared: dict[str, Float[Tensor, "rows d_model"]]
    ) -> list[Record]:
        store = self.store
        shard = shard_name(batch_id)
        laid_out: list[Record] = []
        offset = 0
        for r in records:
            count = len(r.positions)
            laid_out.append(
                Record(
                    **{k: json.loads(canonical_json(v)) for k, v in r.to_json().items()},
                    batch_id=batch_id,
                    shard=shard,
                    shard_sha256="",  # known once the shard, which seals the rest, is written
                    row_offset=offset,
                    row_count=count,
                    rows_sha256=rows_sha256(prepared, store.manifest.hook_points, offset, count),
                )
            )
            offset += count
        shard_sha = write_shard(store.root, batch_id, prepared, self._token, shard_header(laid_out))
        stored = [dataclasses.replace(r, shard_sha256=shard_sha) for r in laid_out]
        lines = b"".join(index_line(r, len(stored)) for r in stored)
        try:
            truncate_index(store.root, store._committed_end)  # a failed earlier append may have left bytes
            append_index(store.root, lines)
        except (StoreWriteError, OSError) as e:
            (store.root / shard).unlink(missing_ok=True)
            if isinstance(e, StoreWriteError):
                raise
            raise StoreWriteError(f"cannot append to the index of store {store.root}: {e}") from e
        store._records.extend(stored)
        store._committed_end += len(lines)
        committed = CommitCount(len(store.done_batch_ids()), len(store._records))
        write_commit_count(store.root, committed, self._token)
        return stored

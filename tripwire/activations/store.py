"""`ResidualStore`: an append-only, crash-safe directory of residual-stream activations.

Layout: `manifest.json` (what all rows share), `index.jsonl` (one sealed JSON record per line, the commit
log), `committed.json` (batches and records committed), `shards/batch-<id>.safetensors` (one tensor per
hook point, token-major). A batch is committed whole: marked pending, shard written and renamed into place,
index lines appended in one write, count bumped; a crash leaves it fully committed or not at all. Reads check
the index against its seals (store_seal.py) and each shard against the index before trusting its rows.
No store file is opened through a symlink; recovery deletes only files a writer's token proves it made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jaxtyping import Float
from torch import Tensor

from tripwire import __version__
from tripwire.activations.positions import PositionPolicy
from tripwire.activations.store_index import (
    MANIFEST,
    STORE_FILES,
    init_store_files,
    read_index,
    read_manifest,
)
from tripwire.activations.store_lock import WriterLock
from tripwire.activations.store_paths import refuse_links
from tripwire.activations.store_query import QueryResult, iter_query, query_all, stored_rows_for
from tripwire.activations.store_shard import TORCH_DTYPES, check_shard_bytes, read_rows
from tripwire.activations.store_types import (
    SCHEMA_VERSION,
    STORE_DTYPES,
    Record,
    StoreDtype,
    StoreManifest,
    StoreMismatchError,
    StoreProblem,
    StoreRecordError,
    canonical_json,
)
from tripwire.activations.store_verify import check_layout, records_digest, verify_store
from tripwire.activations.store_writer import StoreWriter


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

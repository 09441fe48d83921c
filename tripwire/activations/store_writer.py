"""`StoreWriter`: appends whole batches to a `ResidualStore` while its writer lock is held.

A batch is committed whole (store.py's docstring gives the order): marked pending, shard written and renamed
into place, index lines appended in one write, count bumped, the pending mark cleared.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jaxtyping import Float
from torch import Tensor

from tripwire.activations.store_deep import shard_header
from tripwire.activations.store_index import (
    append_index,
    index_line,
    shard_name,
    truncate_index,
    write_commit_count,
)
from tripwire.activations.store_lock import WriterLock
from tripwire.activations.store_recover import clear_pending, mark_pending, recover
from tripwire.activations.store_seal import CommitCount
from tripwire.activations.store_shard import TORCH_DTYPES, rows_sha256, write_shard
from tripwire.activations.store_types import (
    Record,
    RecordMeta,
    StoreMismatchError,
    StoreRecordError,
    StoreWriteError,
    canonical_json,
    check_batch_id,
)

if TYPE_CHECKING:
    from tripwire.activations.store import ResidualStore


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

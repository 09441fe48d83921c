"""Resumable, deterministic batch runner that fills a `ResidualStore`.

Items are cut into batches in their given order, so the same config always yields the same batches,
and a batch's id is derived from its record ids. Because the store commits batches whole, a rerun
after a crash skips exactly the committed batches and recomputes only the one that was in flight.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from tripwire.activations.store import ResidualStore
from tripwire.activations.store_types import RecordMeta
from tripwire.errors import TripwireError

PayloadT = TypeVar("PayloadT")


@dataclass(frozen=True)
class WorkItem(Generic[PayloadT]):
    """One record to compute; `record_id` should come from `store_types.record_id`."""

    record_id: str
    payload: PayloadT


@dataclass(frozen=True)
class BatchResult:
    """What `compute` returns: records in the order of its items, rows concatenated in that order."""

    records: list[RecordMeta]
    rows: dict[str, Float[Tensor, "rows d_model"]]


@dataclass(frozen=True)
class RunSummary:
    batches_total: int
    batches_skipped: int
    batches_computed: int
    records_written: int
    tokens_written: int
    seconds: float


class RunnerError(TripwireError, ValueError):
    """Bad runner input or a `compute` result that does not match its items."""


def batch_id_for(record_ids: Sequence[str]) -> str:
    """Deterministic batch id: the same records in the same order always name the same batch."""
    return hashlib.sha256("\n".join(record_ids).encode()).hexdigest()[:16]


def plan_batches(items: Sequence[WorkItem[PayloadT]], batch_size: int) -> list[list[WorkItem[PayloadT]]]:
    """Consecutive chunks of `batch_size` items in the given order."""
    if batch_size < 1:
        raise RunnerError(f"batch_size={batch_size} must be >= 1")
    repeated = [rid for rid, n in Counter(it.record_id for it in items).items() if n > 1]
    if repeated:
        raise RunnerError(
            f"record ids {repeated[:5]} occur more than once in the work items; give each sample a distinct "
            "sample_index or seed so record_id differs"
        )
    return [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]


def run_batches(
    store: ResidualStore,
    items: Sequence[WorkItem[PayloadT]],
    batch_size: int,
    compute: Callable[[list[WorkItem[PayloadT]]], BatchResult],
    *,
    progress: bool = True,
) -> RunSummary:
    """Compute and commit every batch whose records are not yet in `store` (takes the writer lock)."""
    start = time.perf_counter()
    chunks = plan_batches(items, batch_size)
    skipped = computed = written = tokens = 0
    with store.writer() as writer:
        done = store.done_record_ids()
        already = sum(it.record_id in done for it in items)
        with tqdm(
            total=len(items), initial=already, disable=not progress, unit="rec", desc="capture", smoothing=0.1
        ) as bar:
            for chunk in chunks:
                # Normally all or none of a chunk is done; a changed batch_size can split old batches.
                pending = [it for it in chunk if it.record_id not in done]
                if not pending:
                    skipped += 1
                    continue
                result = compute(pending)
                got = [r.record_id for r in result.records]
                wanted = [it.record_id for it in pending]
                if got != wanted:
                    raise RunnerError(
                        f"compute returned records {got[:3]}... for items {wanted[:3]}...; it must return one "
                        "record per item, in item order, with the item's record_id"
                    )
                writer.commit_batch(batch_id_for(wanted), result.records, result.rows)
                computed += 1
                written += len(pending)
                tokens += sum(r.n_tokens for r in result.records)
                bar.update(len(pending))
                bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - start, 1e-9):.0f}")
    return RunSummary(
        batches_total=len(chunks),
        batches_skipped=skipped,
        batches_computed=computed,
        records_written=written,
        tokens_written=tokens,
        seconds=time.perf_counter() - start,
    )

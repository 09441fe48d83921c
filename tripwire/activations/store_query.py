"""Reading stored rows back as probe-ready matrices, shard by shard through memory maps.

Shards are opened through `shard_file` (the store's checked path lookup), never by joining paths here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import groupby
from pathlib import Path
from typing import NamedTuple

import torch
from jaxtyping import Float, Int
from safetensors import safe_open
from torch import Tensor

from tripwire.activations.positions import PositionPolicy, select_positions
from tripwire.activations.store_types import Record, StoreRecordError


class QueryResult(NamedTuple):
    """Rows with their provenance; `record_index` indexes `ResidualStore.records()` (index order)."""

    X: Float[Tensor, "rows d_model"]
    y: Int[Tensor, " rows"] | None
    record_index: Int[Tensor, " rows"]
    token_index: Int[Tensor, " rows"]


def stored_rows_for(record: Record, policy: PositionPolicy | None) -> tuple[list[int], list[int]]:
    """(token positions, row numbers within the record's rows) that `policy` selects."""
    if policy is None:
        return list(record.positions), list(range(record.row_count))
    # a sampled reply's last token was emitted but never fed to the model: it has no activation
    fed = int(record.meta.get("fed_tokens", record.n_tokens))
    wanted = [p for p in select_positions(policy, record) if p < fed]
    return wanted, rows_at(record, wanted, f" selected by {policy}; query with a policy within the capture policy")


def rows_at(record: Record, positions: Sequence[int], why: str = "; pick among record.positions") -> list[int]:
    """Row numbers within the record's rows of token `positions`; a position without a row is an error."""
    row_of = {p: i for i, p in enumerate(record.positions)}
    missing = [p for p in positions if p not in row_of]
    if missing:
        raise StoreRecordError(f"record {record.record_id} has no stored rows for positions {list(missing)[:10]}"
                               f"{why}, or recapture with a broader policy")
    return [row_of[p] for p in positions]


class _Chunk(NamedTuple):
    rows: Tensor
    record_index: int
    positions: list[int]
    label: int | None


def _iter_chunks(
    shard_file: Callable[[str], Path],
    hook_point: str,
    selected: Sequence[tuple[int, Record]],
    policy: PositionPolicy | None,
    label: str | None,
) -> Iterator[_Chunk]:
    """One chunk per record, opening each shard once (records of a batch are contiguous)."""
    for shard, group in groupby(selected, key=lambda item: item[1].shard):
        with safe_open(str(shard_file(shard)), framework="pt") as f:
            tensor_slice = f.get_slice(hook_point)
            for index, record in group:
                positions, local = stored_rows_for(record, policy)
                if not positions:
                    continue
                rows: Tensor = tensor_slice[record.row_offset : record.row_offset + record.row_count]
                y = record.labels[label] if label is not None else None
                yield _Chunk(rows[local], index, positions, y)


def _assemble(chunks: list[_Chunk], d_model: int, dtype: torch.dtype, with_y: bool) -> QueryResult:
    if not chunks:
        empty = torch.zeros(0, dtype=torch.long)
        return QueryResult(torch.zeros(0, d_model, dtype=dtype), empty if with_y else None, empty, empty)
    sizes = [len(c.positions) for c in chunks]
    y = (
        torch.repeat_interleave(
            torch.tensor([c.label for c in chunks], dtype=torch.long), torch.tensor(sizes)
        )
        if with_y
        else None
    )
    return QueryResult(
        X=torch.cat([c.rows for c in chunks]),
        y=y,
        record_index=torch.repeat_interleave(
            torch.tensor([c.record_index for c in chunks]), torch.tensor(sizes)
        ),
        token_index=torch.tensor([p for c in chunks for p in c.positions], dtype=torch.long),
    )


def iter_query(
    shard_file: Callable[[str], Path],
    hook_point: str,
    selected: Sequence[tuple[int, Record]],
    *,
    policy: PositionPolicy | None,
    label: str | None,
    batch_rows: int,
    d_model: int,
    dtype: torch.dtype,
) -> Iterator[QueryResult]:
    """Yield `QueryResult`s of at most `batch_rows` rows (a record may be split across two)."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows={batch_rows} must be >= 1")
    pending: list[_Chunk] = []
    n_pending = 0
    for chunk in _iter_chunks(shard_file, hook_point, selected, policy, label):
        while chunk.positions:
            take = min(batch_rows - n_pending, len(chunk.positions))
            pending.append(_Chunk(chunk.rows[:take], chunk.record_index, chunk.positions[:take], chunk.label))
            n_pending += take
            chunk = _Chunk(chunk.rows[take:], chunk.record_index, chunk.positions[take:], chunk.label)
            if n_pending == batch_rows:
                yield _assemble(pending, d_model, dtype, label is not None)
                pending, n_pending = [], 0
    if pending:
        yield _assemble(pending, d_model, dtype, label is not None)


def query_all(
    shard_file: Callable[[str], Path],
    hook_point: str,
    selected: Sequence[tuple[int, Record]],
    *,
    policy: PositionPolicy | None,
    label: str | None,
    d_model: int,
    dtype: torch.dtype,
) -> QueryResult:
    chunks = list(_iter_chunks(shard_file, hook_point, selected, policy, label))
    return _assemble(chunks, d_model, dtype, label is not None)

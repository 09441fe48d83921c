"""Fit and score probes on stores larger than memory, reading shard rows a chunk at a time.

``store_chunks`` turns chosen token rows of a ``ResidualStore`` (record ids, per-record positions and
labels) into the re-iterable ``(X, y)`` source that every probe's ``fit_chunks`` takes:

    source = store_chunks(store, "blocks.12.resid_post", ids, labels="coercion", policy=BeforeAction())
    probe = LogisticProbe(C=1e-3).fit_chunks(source)
    scores = record_scores(probe, store, "blocks.12.resid_post", records, ReplyOnly())

Each chunk opens the shards it needs, copies out its rows and closes them again, so neither the rows
nor the shards' mapped pages accumulate: peak memory is a few chunks, whatever the store's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from safetensors import safe_open
from torch import Tensor

from tripwire.activations.positions import PositionPolicy
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_query import rows_at, stored_rows_for
from tripwire.activations.store_types import Record
from tripwire.probes.estimators import LinearProbe

CHUNK_BYTES = 2**23
"""Default chunk size as float64 bytes (8 MiB; the probes convert each chunk to float64). A streaming
fit holds a few chunks' worth whatever the store's size; bigger chunks only save per-chunk overhead."""


@dataclass(frozen=True)
class _Piece:
    """Rows of one record inside one chunk: ``rows`` index the record's stored rows."""

    record: Record
    rows: Int[np.ndarray, " k"]
    label: int


@dataclass(frozen=True)
class StoreChunks:
    """A ``ChunkSource`` over chosen rows of a store: each call is a fresh pass, in record order.

    Yields ``(X, y)`` with ``X`` in the store's dtype (float16/bfloat16) and ``y`` the record's label on
    every row of it. Records in store order read each shard sequentially.
    """

    shard_file: Callable[[str], Path]  # the store's checked lookup: path rules and sha256, once per shard
    hook_point: str
    records: tuple[Record, ...]
    rows: tuple[Int[np.ndarray, " k"], ...]  # per record: indices into its stored rows
    labels: Int[np.ndarray, " records"]
    chunk_rows: int

    @property
    def n_rows(self) -> int:
        return sum(len(r) for r in self.rows)

    def per_row(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Per-record values (pair ids, groups, record numbers) repeated onto the rows a pass yields."""
        return np.repeat(np.asarray(values), [len(r) for r in self.rows], axis=0)

    def _chunk_plans(self) -> Iterator[list[_Piece]]:
        plan: list[_Piece] = []
        room = self.chunk_rows
        for record, rows, label in zip(self.records, self.rows, self.labels.tolist(), strict=True):
            while len(rows):
                plan.append(_Piece(record, rows[:room], label))
                rows = rows[room:]
                room -= len(plan[-1].rows)
                if room == 0:
                    yield plan
                    plan, room = [], self.chunk_rows
        if plan:
            yield plan

    def _read(self, plan: list[_Piece]) -> Float[Tensor, "rows d_model"]:
        blocks: list[Tensor] = []
        for shard, pieces in groupby(plan, key=lambda piece: piece.record.shard):
            with safe_open(str(self.shard_file(shard)), framework="pt") as f:
                tensor_slice = f.get_slice(self.hook_point)
                for piece in pieces:
                    first, last = int(piece.rows.min()), int(piece.rows.max())
                    offset = piece.record.row_offset
                    block: Tensor = tensor_slice[offset + first : offset + last + 1]
                    if len(block) != len(piece.rows) or not (np.diff(piece.rows) == 1).all():
                        block = block.index_select(0, torch.from_numpy(piece.rows - first))
                    blocks.append(block)
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks)

    def __call__(self) -> Iterator[tuple[Float[Tensor, "rows d_model"], Int[np.ndarray, " rows"]]]:
        for plan in self._chunk_plans():
            y = np.concatenate([np.full(len(piece.rows), piece.label, dtype=np.int64) for piece in plan])
            yield self._read(plan), y


def _record_rows(record: Record, positions: Sequence[int] | None, policy: PositionPolicy | None) -> np.ndarray:
    rows = stored_rows_for(record, policy)[1] if positions is None else rows_at(record, positions)
    return np.asarray(rows, dtype=np.intp)


def store_chunks(
    store: ResidualStore,
    hook_point: str,
    record_ids: Sequence[str],
    labels: Sequence[int] | str,
    positions: Sequence[Sequence[int]] | None = None,
    *,
    policy: PositionPolicy | None = None,
    chunk_rows: int | None = None,
) -> StoreChunks:
    """The rows of ``record_ids`` at ``hook_point``, streamed for ``fit_chunks``.

    ``labels``: one per record, or the name of a label every record carries. Rows: the token
    ``positions`` given per record (e.g. a subsample), else those ``policy`` selects, else every stored
    row. ``chunk_rows`` defaults to ``CHUNK_BYTES`` of float64 rows.
    """
    if hook_point not in store.manifest.hook_points:
        raise KeyError(f"hook point {hook_point!r} is not stored; this store has {store.manifest.hook_points}")
    if positions is not None and policy is not None:
        raise ValueError("pass positions or policy, not both: positions already name the rows to read.")
    by_id = {r.record_id: r for r in store.records()}
    unknown = [i for i in record_ids if i not in by_id]
    if unknown:
        raise KeyError(f"{len(unknown)} record ids are not in store {store.root} (e.g. {unknown[:3]}).")
    records = tuple(by_id[i] for i in record_ids)
    if isinstance(labels, str):
        unlabelled = [r.record_id for r in records if labels not in r.labels]
        if unlabelled:
            raise ValueError(f"{len(unlabelled)} records lack label {labels!r} (e.g. {unlabelled[:3]}).")
        labels = [r.labels[labels] for r in records]
    if len(labels) != len(records) or (positions is not None and len(positions) != len(records)):
        raise ValueError(f"give one label (and one positions list) per record: {len(records)} records.")
    rows = tuple(
        _record_rows(r, None if positions is None else positions[i], policy) for i, r in enumerate(records)
    )
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_BYTES // (8 * store.manifest.d_model))
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows} must be >= 1")
    return StoreChunks(store.shard_file, hook_point, records, rows, np.asarray(labels, dtype=np.int64), chunk_rows)


def record_scores(
    probe: LinearProbe,
    store: ResidualStore,
    hook_point: str,
    records: Sequence[Record],
    policy: PositionPolicy | None = None,
) -> list[Float[np.ndarray, " tok"]]:
    """Per-record token scores (``decision_function``), reading one record's rows at a time.

    A record with no selected rows gets an empty array, so the list stays aligned with ``records``.
    """
    scores = []
    for record in records:
        rows = store.activations(record, hook_point, policy)
        scores.append(np.asarray(probe.decision_function(rows)) if len(rows) else np.zeros(0))
    return scores

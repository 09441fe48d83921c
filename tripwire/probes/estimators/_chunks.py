"""Fit data as a re-iterable stream of row chunks, for stores larger than memory.

A ``ChunkSource`` is a zero-argument callable; each call starts a fresh pass over the same rows, in the
same order, as ``(X_chunk, y_chunk)`` pairs. Probes make several passes (moments first, then the
direction, then the calibration projections; L-BFGS one per loss evaluation), so a one-shot generator
is not enough: ``lambda: store_reader()`` is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from numpy.typing import ArrayLike
from sklearn.utils.validation import column_or_1d

from tripwire.errors import TripwireError

Chunk = tuple[ArrayLike | torch.Tensor, ArrayLike | torch.Tensor]
ChunkSource = Callable[[], Iterable[Chunk]]


class ChunkSourceError(TripwireError, ValueError):
    """The chunk source is not a faithful re-iterable view of one data set."""


def labels_1d(y: ArrayLike | torch.Tensor) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().to("cpu").numpy()
    return column_or_1d(np.asarray(y))


@dataclass
class ClassMoments:
    """Per-label row count, mean and summed squared deviation, merged chunk by chunk.

    Chan et al.'s pairwise update keeps float64 accuracy where raw sums of squares would cancel
    (residual features have means far from zero), so the streamed ``mean_``/``scale_`` match
    ``X.mean(0)``/``X.std(0)`` to rounding.
    """

    count: dict[Any, int] = field(default_factory=dict)
    mean: dict[Any, np.ndarray] = field(default_factory=dict)
    m2: dict[Any, np.ndarray] = field(default_factory=dict)

    def add(self, X: Float[np.ndarray, "rows d"], y: np.ndarray) -> None:
        for label in np.unique(y):
            mask = y == label
            rows = X if mask.all() else X[mask]  # chunks are often one record's label: no copy
            n_b, mean_b = len(rows), rows.mean(axis=0)
            deviation = rows - mean_b
            m2_b = np.square(deviation, out=deviation).sum(axis=0)
            key = label.item()
            if key not in self.count:
                self.count[key], self.mean[key], self.m2[key] = n_b, mean_b, m2_b
                continue
            n_a = self.count[key]
            n = n_a + n_b
            delta = mean_b - self.mean[key]
            self.mean[key] = self.mean[key] + delta * (n_b / n)
            self.m2[key] = self.m2[key] + m2_b + delta**2 * (n_a * n_b / n)
            self.count[key] = n

    @property
    def n_rows(self) -> int:
        return sum(self.count.values())

    def pooled(self) -> tuple[Float[np.ndarray, " d"], Float[np.ndarray, " d"]]:
        """Mean and (population) standard deviation over all rows, as ``X.mean(0)``, ``X.std(0)``."""
        counts = np.array(list(self.count.values()), dtype=np.float64)
        means = np.stack(list(self.mean.values()))
        mean = counts @ means / counts.sum()
        m2 = np.stack(list(self.m2.values())).sum(axis=0) + counts @ (means - mean) ** 2
        return mean, np.sqrt(m2 / counts.sum())


def float64_chunks(
    chunks: ChunkSource,
) -> Iterator[tuple[Float[np.ndarray, "rows d"], np.ndarray]]:
    """One pass: the non-empty chunks as float64 rows and 1-D labels.

    Torch tensors of any dtype (float16, bfloat16) and device are accepted. Every chunk is converted
    into one float64 buffer, reused for the whole pass, so its rows are valid only until the next
    chunk: fresh multi-MiB arrays per chunk cost page faults and fragment the allocator's heap.
    """
    buffer = np.empty(0)
    for X, y in chunks():
        y_arr = labels_1d(y)
        if len(y_arr) == 0:
            continue
        source = X.detach() if isinstance(X, torch.Tensor) else np.asarray(X)
        size = int(np.prod(source.shape))
        if buffer.size < size:
            buffer = np.empty(size)
        rows = buffer[:size].reshape(tuple(source.shape))
        if isinstance(source, torch.Tensor):
            torch.from_numpy(rows).copy_(source)
        else:
            np.copyto(rows, source, casting="same_kind")
        yield rows, y_arr


def iter_rows(
    chunks: ChunkSource, positive: Any, n_rows: int
) -> Iterator[tuple[Float[np.ndarray, "rows d"], Float[np.ndarray, " rows"]]]:
    """A later pass: float64 rows and 0/1 labels, checking the source re-yields the first pass's rows."""
    seen = 0
    for rows, y in float64_chunks(chunks):
        seen += len(y)
        yield rows, (y == positive).astype(np.float64)
    if seen != n_rows:
        raise ChunkSourceError(
            f"the chunk source yielded {seen} rows on a later pass but {n_rows} on the first; chunks() must "
            "start a new pass over the same rows on every call (a callable, not a one-shot generator)."
        )

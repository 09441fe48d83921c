"""`KVCache`: a transformers KV cache plus the batch size it holds, used through public API only.

Why a wrapper: transformers' `Cache` has no public batch-size accessor for dynamic layers (its internals
changed in 5.24, which broke code that read `cache.layers[0].keys`), and the forward argument that
carries it was renamed from `past_key_values` to `cache` in 5.24. This module is the one place that
knows either fact; backends and the decode loop only see `KVCache`.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any

from jaxtyping import Int
from torch import Tensor


@dataclass
class KVCache:
    """A model's KV cache (`inner`, a transformers `Cache`) and the number of rows it holds."""

    inner: Any
    batch: int

    @property
    def length(self) -> int:
        """Tokens held per row (padding included)."""
        return int(self.inner.get_seq_length())

    def copy(self) -> KVCache:
        """An independent copy, so a shared prefix can be reused by many calls."""
        return KVCache(copy.deepcopy(self.inner), self.batch)

    def for_batch(self, batch: int) -> KVCache:
        """A copy sized for `batch` rows: a batch-1 cache is repeated; any other size must match."""
        if self.batch == batch:
            return self.copy()
        if self.batch != 1:
            raise ValueError(f"the prefix cache has batch {self.batch}, this call has {batch}; use a batch-1 prefix.")
        out = self.copy()
        out.inner.batch_repeat_interleave(batch)
        out.batch = batch
        return out

    def keep_rows(self, index: Int[Tensor, " keep"]) -> None:
        """Drop finished rows in place (the decode loop's compaction)."""
        self.inner.batch_select_indices(index)
        self.batch = int(index.numel())

    def fork_rows(self, source: Int[Tensor, " rows"]) -> None:
        """Row i becomes a copy of row `source[i]`, in place (indices may repeat): one prompt's cache
        for each of its samples (`activations.shared_prefill`)."""
        self.keep_rows(source)


def cache_argument(forward: Any) -> str:
    """The keyword a model's forward takes its cache by: `cache` (transformers >= 5.24) or the older
    `past_key_values`. Read from the public signature, so no deprecation warning is ever triggered."""
    params = inspect.signature(forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def returned_cache(output: Any, argument: str) -> Any:
    """The cache a model output carries, by the same name the forward took it (no deprecated alias)."""
    return output.get(argument)

"""`KVCache`: a transformers KV cache plus the batch size it holds, used through public API only.

Why a wrapper: transformers' `Cache` has no public batch-size accessor for dynamic layers (its internals
changed in 5.24, which broke code that read `cache.layers[0].keys`), and the forward argument that
carries it was renamed from `past_key_values` to `cache` in 5.24. This module is the one place that
knows either fact; backends and the decode loop only see `KVCache`.

Why `reserve`: transformers' `DynamicLayer` grows by `torch.cat`, a copy of the whole cache at every decode
step, so a step costs more the longer the context. A layer with room reserved writes the step's positions
in place (`ReservedLayer`). Decoding 8 samples of a 3,248-token scenario, 32 new tokens, in CPU time
on the default model (`benchmarks/bench_rollout.py`, `kv_reserve_speedup`): 1.09x; the saving grows with the context.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jaxtyping import Float, Int
from torch import Tensor
from transformers.cache_utils import DynamicLayer


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

    def reserve(self, tokens: int) -> None:
        """Room for `tokens` more positions per row (at most `ROOM` at once, `ROOM` more whenever it
        fills), so the next updates write in place instead of copying the cache: a call allowed 2,000
        new tokens that stops after 100 holds at most `ROOM` unused positions per layer. Only plain
        `DynamicLayer`s change; sliding-window, static or quantised layers, and caches that are not
        transformers' (`layers`), are left as they are. Values never change."""
        layers = getattr(self.inner, "layers", None)
        if tokens < 1 or not isinstance(layers, list):
            return
        for i, layer in enumerate(layers):
            if type(layer) is DynamicLayer and layer.get_seq_length() > 0:
                layers[i] = ReservedLayer(*_held(layer), min(tokens, ROOM))


ROOM = 256  # positions a reserved layer adds at a time: 256 times fewer copies than growing by one


class ReservedLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values are the front of longer buffers: an update writes its
    positions into the room behind them (no copy of what is cached) and returns views; when the room is
    full, the cache moves into buffers with `ROOM` more.

    Every method of the base class keeps its meaning: one that replaces `keys` with a new tensor (beam
    reordering) only costs a move into fresh buffers at the next update, as does a `crop` (so a tensor an
    earlier update returned is never overwritten) or states of another dtype or device (concatenated, as
    the base class does). Row selection (the decode loop's compaction and forks) selects buffer rows."""

    def __init__(self, keys: Float[Tensor, "batch head tok d"], values: Float[Tensor, "batch head tok d"],
                 room: int):
        super().__init__()
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self.key_buffer: Tensor | None = None
        self.value_buffer: Tensor | None = None
        self._move(keys, values, keys.shape[-2] + room)

    def _move(self, keys: Tensor, values: Tensor, capacity: int) -> None:
        n = keys.shape[-2]
        key_buffer = keys.new_empty(*keys.shape[:-2], capacity, keys.shape[-1])
        value_buffer = values.new_empty(*values.shape[:-2], capacity, values.shape[-1])
        key_buffer[..., :n, :].copy_(keys)
        value_buffer[..., :n, :].copy_(values)
        self._front(key_buffer, value_buffer, n)

    def _front(self, key_buffer: Tensor, value_buffer: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """Hold these buffers, with keys and values their first `n` positions (returned)."""
        self.key_buffer, self.value_buffer = key_buffer, value_buffer
        self.keys, self.values = key_buffer[..., :n, :], value_buffer[..., :n, :]
        return self.keys, self.values

    def _fronts_buffers(self, length: int) -> bool:
        """Whether keys and values are still views of the buffers' front and `length` positions fit."""
        return all(
            buffer is not None and view.data_ptr() == buffer.data_ptr() and view.shape[:-2] == buffer.shape[:-2]
            and view.stride() == buffer.stride() and buffer.shape[-2] >= length
            for view, buffer in zip(_held(self), (self.key_buffer, self.value_buffer), strict=True))

    def update(self, key_states: Tensor, value_states: Tensor, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        keys, values = self.keys, self.values
        if (keys is None or values is None or keys.numel() == 0  # after `reset`
                or (key_states.dtype, key_states.device) != (keys.dtype, keys.device)
                or (value_states.dtype, value_states.device) != (values.dtype, values.device)):
            return super().update(key_states, value_states, *args, **kwargs)
        n, new = keys.shape[-2], key_states.shape[-2]
        if not self._fronts_buffers(n + new):
            self._move(keys, values, n + new + ROOM)
        key_buffer, value_buffer = self.key_buffer, self.value_buffer
        assert key_buffer is not None and value_buffer is not None
        key_buffer[..., n : n + new, :].copy_(key_states)
        value_buffer[..., n : n + new, :].copy_(value_states)
        return self._front(key_buffer, value_buffer, n + new)

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        self.key_buffer = self.value_buffer = None  # the next update moves: returned tensors stay as they were

    def reset(self) -> None:
        self.key_buffer = self.value_buffer = None
        super().reset()

    def offload(self) -> None:
        self.key_buffer = self.value_buffer = None  # the views keep the cache; the base class moves them
        super().offload()

    def batch_select_indices(self, indices: Tensor) -> None:
        if self.get_seq_length() == 0:
            return super().batch_select_indices(indices)
        self._rows(lambda buffer: buffer[indices.to(buffer.device)])

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.get_seq_length() == 0:
            return super().batch_repeat_interleave(repeats)
        self._rows(lambda buffer: buffer.repeat_interleave(repeats, dim=0))

    def _rows(self, select: Callable[[Tensor], Tensor]) -> None:
        n = self.get_seq_length()
        if not self._fronts_buffers(n):
            self._move(*_held(self), n + ROOM)
        assert self.key_buffer is not None and self.value_buffer is not None
        self._front(select(self.key_buffer), select(self.value_buffer), n)


def _held(layer: DynamicLayer) -> tuple[Tensor, Tensor]:
    """An initialised layer's keys and values (typed `Tensor | None` by transformers)."""
    assert layer.keys is not None and layer.values is not None
    return layer.keys, layer.values


def cache_argument(forward: Any) -> str:
    """The keyword a model's forward takes its cache by: `cache` (transformers >= 5.24) or the older
    `past_key_values`. Read from the public signature, so no deprecation warning is ever triggered."""
    params = inspect.signature(forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def returned_cache(output: Any, argument: str) -> Any:
    """The cache a model output carries, by the same name the forward took it (no deprecated alias)."""
    return output.get(argument)

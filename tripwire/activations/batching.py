"""Left padding, absolute positions and prefix caches: what every forward and the decode loop share."""

from __future__ import annotations

import torch
from jaxtyping import Int
from torch import Tensor

from tripwire.activations.kv_cache import KVCache


def positions(mask: Int[Tensor, "batch tok"]) -> Int[Tensor, "batch tok"]:
    """Absolute positions that skip left padding (what HF generate uses)."""
    pos = mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)


def pad_left(rows: list[list[int]], pad_id: int, device: str | torch.device = "cpu"
             ) -> tuple[Int[Tensor, "batch tok"], Int[Tensor, "batch tok"]]:
    """Token ids and attention mask, left-padded, on `device` (built on the host, then one copy each)."""
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("every row needs at least one token")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    return torch.as_tensor(ids, device=device), torch.as_tensor(mask, device=device)


def prepare_past(
    past: KVCache | None, mask: Int[Tensor, "batch tok"], cache_rows: int | None = None
) -> tuple[KVCache | None, Int[Tensor, "batch past_and_tok"], int]:
    """Copy a prefix cache (never mutate the caller's), repeat a batch-1 cache to the batch (or to
    `cache_rows`: the distinct prompts of a shared prefill), and extend the attention mask over the
    prefix. Returns (cache, mask, prefix length)."""
    if past is None:
        return None, mask, 0
    if not isinstance(past, KVCache):
        raise TypeError(f"`past` must be the `.past` of a forward with use_cache=True (a KVCache), got "
                        f"{type(past).__name__}.")
    cache = past.for_batch(mask.shape[0] if cache_rows is None else cache_rows)
    length = cache.length
    prefix = torch.ones(mask.shape[0], length, dtype=mask.dtype, device=mask.device)
    return cache, torch.cat([prefix, mask], 1), length

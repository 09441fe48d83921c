"""`KVCache.reserve`: a decode step writes its position into reserved room instead of copying the cache,
and every number stays what transformers' concatenating `DynamicLayer` gives: bit for bit, through row
selection, forks, crops, repeats and growth past the room."""

from __future__ import annotations

import pytest
import torch
from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

from tests.parity import cache_capable
from tripwire.activations import SamplingParams, StepInfo, load_model
from tripwire.activations.handle import ModelHandle
from tripwire.activations.kv_cache import ROOM, KVCache, ReservedLayer

SAMPLED = SamplingParams(max_new_tokens=12, min_new_tokens=12, temperature=1.0, top_k=40)
HOOKS = ["blocks.0.resid_pre", "blocks.2.resid_post"]


def _kv(batch: int, tokens: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, tokens, 8, generator=g), torch.randn(batch, 2, tokens, 8, generator=g)


def test_reserved_layer_returns_what_the_concatenating_layer_returns() -> None:
    """Same keys and values after every operation, room of 2 outgrown on purpose."""
    plain, reserved = DynamicLayer(), None
    k, v = _kv(3, 5, 0)
    plain.update(k, v)
    reserved = ReservedLayer(k, v, room=2)
    steps = [("update", 1), ("update", 1), ("update", 3), ("select", [2, 0, 0, 1]), ("update", 1),
             ("crop", -2), ("update", 1), ("repeat", 2), ("update", 2), ("select", [5]), ("update", 1)]
    for i, (op, arg) in enumerate(steps):
        if op == "update":
            k, v = _kv(plain.keys.shape[0], arg, 10 + i)
            pk, pv = plain.update(k, v)
            rk, rv = reserved.update(k, v)
            assert torch.equal(pk, rk) and torch.equal(pv, rv), f"step {i}"
        elif op == "select":
            plain.batch_select_indices(torch.tensor(arg))
            reserved.batch_select_indices(torch.tensor(arg))
        elif op == "crop":
            plain.crop(arg)
            reserved.crop(arg)
        else:
            plain.batch_repeat_interleave(arg)
            reserved.batch_repeat_interleave(arg)
        assert reserved.get_seq_length() == plain.get_seq_length(), f"step {i}"
        assert torch.equal(plain.keys, reserved.keys) and torch.equal(plain.values, reserved.values), f"step {i}"


def test_updates_within_the_room_write_in_place() -> None:
    """What makes it fast: no new buffer while the room lasts, also after rows are selected."""
    k, v = _kv(4, 6, 1)
    layer = ReservedLayer(k, v, room=5)
    buffer = layer.key_buffer.data_ptr()
    for step in range(3):
        layer.update(*_kv(4, 1, 20 + step))
        assert layer.key_buffer.data_ptr() == buffer and layer.keys.data_ptr() == buffer
    layer.batch_select_indices(torch.tensor([3, 1]))
    buffer = layer.key_buffer.data_ptr()
    for step in range(2):
        layer.update(*_kv(2, 1, 30 + step))
        assert layer.key_buffer.data_ptr() == buffer and layer.value_buffer.shape[-2] == 11
    assert layer.get_seq_length() == 11


def test_reserve_changes_only_plain_dynamic_layers() -> None:
    cache = DynamicCache()
    cache.layers = [DynamicLayer(), DynamicSlidingWindowLayer(sliding_window=4), DynamicLayer()]
    for i in range(2):
        cache.update(*_kv(2, 6, i), layer_idx=i)  # layer 2 stays empty
    KVCache(cache, 2).reserve(8)
    assert [type(layer) for layer in cache.layers] == [ReservedLayer, DynamicSlidingWindowLayer, DynamicLayer]
    KVCache(object(), 2).reserve(8)  # a cache that is not transformers': nothing to do, no error


def _stop_two_rows(info: StepInfo) -> torch.Tensor | None:
    """Rows 1 and 3 stop at step 4: the decode loop compacts its batch (selects cache rows)."""
    if info.step != 4:
        return None
    return torch.tensor([r in (1, 3) for r in info.rows])


@pytest.mark.slow
def test_decoding_with_reserved_room_equals_decoding_without(
        tiny_llama_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every backend the decode loop serves: tokens and activations bit-equal with `reserve` off; with it
    on, every layer moves into buffers once (at the prefill) however the batch forks and shrinks."""
    handles: dict[str, ModelHandle] = cache_capable(
        {b: load_model(str(tiny_llama_dir), backend=b) for b in ("hf", "nnsight", "transformer_lens")})
    h0 = handles["hf"]
    a = h0.render_chat([{"role": "user", "content": "Name three colours."}])
    b = h0.render_chat([{"role": "user", "content": "The board will replace the assistant at five today."}])
    prompts, seeds = [a, b, a, b, a], [4, 1, 9, 2, 7]
    moves: list[int] = []
    real_move = ReservedLayer._move

    def counted(self: ReservedLayer, *args: object) -> None:
        moves.append(1)
        real_move(self, *args)  # type: ignore[arg-type]

    for name, h in handles.items():
        runs = {}
        for reserve in (True, False):
            with monkeypatch.context() as m:
                m.setattr(ReservedLayer, "_move", counted)
                if not reserve:
                    m.setattr(KVCache, "reserve", lambda self, tokens: None)
                moves.clear()
                runs[reserve] = h.generate(prompts, sampling=SAMPLED, seeds=seeds, capture=HOOKS,
                                           on_step=_stop_two_rows)
                if reserve:
                    assert len(moves) == h.n_layers, name
        on, off = runs[True], runs[False]
        assert [r.new_ids for r in on] == [r.new_ids for r in off], name
        assert [len(r.new_ids) for r in on] == [12, 4, 12, 4, 12], name
        for x, y in zip(on, off, strict=True):
            for hook in HOOKS:
                assert torch.equal(x.activations[hook], y.activations[hook]), (name, hook)


def test_reserve_takes_room_a_chunk_at_a_time() -> None:
    """A call allowed many tokens holds `ROOM` positions of room, and `ROOM` more when they fill (one
    move per `ROOM` tokens); a short call holds what it needs. Values stay the concatenating layer's."""
    assert ROOM == 256
    layers = {}
    for tokens, capacity in ((10, 210), (2000, 456)):
        cache = DynamicCache()
        cache.layers = [DynamicLayer()]
        cache.update(*_kv(2, 200, 5), layer_idx=0)
        KVCache(cache, 2).reserve(tokens)
        layers[tokens] = layer = cache.layers[0]
        assert isinstance(layer, ReservedLayer) and layer.key_buffer.shape[-2] == capacity
    layer, plain = layers[2000], DynamicLayer()
    plain.update(*_kv(2, 200, 5))
    capacities = set()
    for step in range(300):
        k, v = _kv(2, 1, 100 + step)
        assert torch.equal(layer.update(k, v)[0], plain.update(k, v)[0])
        capacities.add(layer.key_buffer.shape[-2])
    assert sorted(capacities) == [456, 457 + ROOM]  # one move, when the first room was full


def test_a_returned_tensor_is_never_overwritten_and_other_dtypes_concatenate() -> None:
    """`DynamicLayer` never changes a tensor it returned: neither may a crop followed by an update here.
    States of another dtype are concatenated (promoted) as the base class does, not cast silently."""
    k, v = _kv(2, 6, 7)
    plain, layer = DynamicLayer(), ReservedLayer(k, v, room=8)
    plain.update(k, v)
    first, _ = layer.update(*_kv(2, 1, 8))
    plain.update(*_kv(2, 1, 8))
    kept = first.clone()
    layer.crop(-1)
    plain.crop(-1)
    for step in range(2):
        assert torch.equal(layer.update(*_kv(2, 1, 9 + step))[0], plain.update(*_kv(2, 1, 9 + step))[0])
    assert torch.equal(first, kept)
    half = ReservedLayer(k.half(), v.half(), room=8)
    out, _ = half.update(*_kv(2, 1, 12))
    assert out.dtype == torch.float32 and torch.equal(out, torch.cat([k.half(), _kv(2, 1, 12)[0]], dim=-2))
    half.reset()
    assert half.get_seq_length() == 0 and half.key_buffer is None
    assert torch.equal(half.update(k, v)[0], k)

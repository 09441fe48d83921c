"""ResidualStore: round trips, queries, ids, refusals and recovery of torn files (in-process)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from store_worker import random_batch  # noqa: E402

from tripwire.activations.positions import LastK, ReplyOnly  # noqa: E402
from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_types import (  # noqa: E402
    RecordMeta,
    StoreDtype,
    StoreLeftoverWarning,
    StoreMismatchError,
    StoreRecordError,
    record_id,
)

HOOKS = ["blocks.0.resid_post", "blocks.3.resid_post"]


def new_store(path: Path, dtype: StoreDtype = "float16", d_model: int = 8) -> ResidualStore:
    return ResidualStore.create(
        path, model_name="m", model_fingerprint="fp-1", hook_points=HOOKS, d_model=d_model, dtype=dtype
    )


def fill(store: ResidualStore, n_batches: int = 3, n_records: int = 4) -> dict[str, dict[str, torch.Tensor]]:
    """Commit batches; return the rows each record was given, per hook."""
    given: dict[str, dict[str, torch.Tensor]] = {}
    with store.writer() as writer:
        for b in range(n_batches):
            records, rows = random_batch(n_records, store.manifest.d_model, HOOKS, seed=b)
            writer.commit_batch(f"b{b}", records, rows)
            offset = 0
            for r in records:
                given[r.record_id] = {h: rows[h][offset : offset + len(r.positions)] for h in HOOKS}
                offset += len(r.positions)
    return given


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_round_trip_rows_and_metadata(tmp_path, dtype):
    store = new_store(tmp_path / "s", dtype=dtype)
    given = fill(store)
    reopened = ResidualStore.open(tmp_path / "s")
    assert reopened.records() == store.records() and len(reopened) == 12
    torch_dtype = getattr(torch, dtype)
    for rec in reopened.records():
        for h in HOOKS:
            got = reopened.activations(rec, h)
            assert got.dtype == torch_dtype
            assert torch.equal(got, given[rec.record_id][h].to(torch_dtype))
    assert reopened.verify() == []


def test_record_fields_survive(tmp_path):
    store = new_store(tmp_path / "s")
    meta = RecordMeta(
        record_id="r1",
        condition_id="blackmail_explicit-america_replacement",
        sample_index=3,
        seed=7,
        sampling={"temperature": 0.7, "top_p": 0.9},
        token_ids=[1, 50, 51, 52, 2],
        text="héllo wörld",
        n_prompt_tokens=2,
        positions=[1, 3],
        scaffold_mask=[True, False, False, False, True],
        labels={"coercion": 1, "eval_aware": 0},
        outcome={"blackmail": True, "classifier": "v1"},
        action_token_index=3,
        token_char_spans=[[0, 0], [0, 5], [5, 6], [6, 11], [11, 11]],
        meta={"note": "x", "nested": {"a": [1, 2]}},
    )
    with store.writer() as writer:
        writer.commit_batch("only", [meta], {h: torch.randn(2, 8) for h in HOOKS})
    (rec,) = ResidualStore.open(tmp_path / "s").records()
    for name in RecordMeta.__dataclass_fields__:
        assert getattr(rec, name) == getattr(meta, name), name
    assert (rec.batch_id, rec.row_offset, rec.row_count) == ("only", 0, 2)


def test_query_matches_per_record_reads(tmp_path):
    store = new_store(tmp_path / "s")
    given = fill(store)
    records = store.records()
    q = store.query(HOOKS[1], label="y", condition="c1")
    expected_records = [i for i, r in enumerate(records) if r.condition_id == "c1"]
    assert sorted(set(q.record_index.tolist())) == expected_records
    for row, (ri, ti) in enumerate(zip(q.record_index.tolist(), q.token_index.tolist(), strict=True)):
        rec = records[ri]
        assert q.y[row] == rec.labels["y"]
        expected = given[rec.record_id][HOOKS[1]][rec.positions.index(ti)].half()
        assert torch.equal(q.X[row], expected)
    assert store.query(HOOKS[0]).y is None
    assert store.query(HOOKS[0], label="absent").X.shape == (0, 8)


def test_policy_query_and_streaming(tmp_path):
    store = new_store(tmp_path / "s")
    fill(store)
    q = store.query(HOOKS[0], policy=LastK(2))
    assert len(q.X) == 2 * len(store)
    rec = store.records()[5]
    assert torch.equal(store.activations(rec, HOOKS[0], LastK(2)), store.activations(rec, HOOKS[0])[-2:])
    full = store.query(HOOKS[0], label="y", policy=ReplyOnly())
    chunks = list(store.iter_batches(HOOKS[0], 7, label="y", policy=ReplyOnly()))
    assert all(len(c.X) <= 7 for c in chunks) and len(chunks) == -(-len(full.X) // 7)
    for field in ("X", "y", "record_index", "token_index"):
        assert torch.equal(torch.cat([getattr(c, field) for c in chunks]), getattr(full, field))


def test_policy_outside_stored_rows_is_refused(tmp_path):
    store = new_store(tmp_path / "s")
    fill(store, n_batches=1)
    rec = store.records()[0]  # stored positions start at 1; dropping no sink asks for position 0
    with pytest.raises(StoreRecordError, match="no stored rows for positions \\[0\\]"):
        store.activations(rec, HOOKS[0], LastK(100, drop_sink=False))
    with pytest.raises(KeyError, match="blocks.3.resid_post"):
        store.activations(rec, "blocks.9.resid_post")


def test_info_counts(tmp_path):
    store = new_store(tmp_path / "s")
    fill(store)
    info = store.info()
    records = store.records()
    assert info["records"] == 12 and info["batches"] == 3
    assert info["tokens"] == sum(len(r.token_ids) for r in records)
    assert info["rows"] == sum(len(r.positions) for r in records)
    assert info["label_counts"] == {"y": {"0": 6, "1": 6}}
    assert info["records_without_outcome"] == 12
    assert info["shard_bytes"] == sum(p.stat().st_size for p in (tmp_path / "s" / "shards").iterdir())
    assert info["index_bytes"] == (tmp_path / "s" / "index.jsonl").stat().st_size


def test_record_id_is_deterministic_and_sensitive():
    base = ("fp", "conv-1", {"temperature": 0.7, "top_p": 1.0}, 0, 5)
    rid = record_id(*base)
    assert rid == record_id("fp", "conv-1", {"top_p": 1.0, "temperature": 0.7}, 0, 5)
    assert 16 <= len(rid) <= 24 and int(rid, 16) >= 0
    variants = [
        ("fp2", *base[1:]),
        (base[0], "conv-2", *base[2:]),
        (*base[:2], {"temperature": 0.8, "top_p": 1.0}, *base[3:]),
        (*base[:3], 1, base[4]),
        (*base[:4], 6),
    ]
    assert len({rid, *(record_id(*v) for v in variants)}) == 6


def test_duplicates_and_bad_records_are_refused(tmp_path):
    store = new_store(tmp_path / "s")
    records, rows = random_batch(2, 8, HOOKS, seed=0)
    with store.writer() as writer:
        writer.commit_batch("a", records, rows)
        with pytest.raises(StoreRecordError, match="already committed"):
            writer.commit_batch("a", *random_batch(2, 8, HOOKS, seed=1))
        with pytest.raises(StoreRecordError, match="already stored"):
            writer.commit_batch("b", records, rows)
        bad = RecordMeta(**{**records[0].to_json(), "record_id": "new", "scaffold_mask": [False]})
        with pytest.raises(StoreRecordError, match="scaffold_mask has 1 entries"):
            writer.commit_batch("c", [bad], {h: rows[h][: len(bad.positions)] for h in HOOKS})
        with pytest.raises(StoreMismatchError, match="hook points"):
            writer.commit_batch("d", *random_batch(1, 8, HOOKS[:1], seed=2))
        with pytest.raises(StoreMismatchError, match="expected float"):
            recs, _ = random_batch(1, 8, HOOKS, seed=3)
            writer.commit_batch("e", recs, {h: torch.zeros(1, 8) for h in HOOKS})
        with pytest.raises(StoreRecordError, match="batch_id"):
            writer.commit_batch("../evil", *random_batch(1, 8, HOOKS, seed=4))
    assert len(ResidualStore.open(tmp_path / "s")) == 2
    assert sorted(p.name for p in (tmp_path / "s" / "shards").iterdir()) == ["batch-a.safetensors"]


def test_torn_index_tail_is_recovered_and_an_unproven_orphan_kept(tmp_path):
    root = tmp_path / "s"
    store = new_store(root)
    fill(store, n_batches=2)
    index = root / "index.jsonl"
    good_size = index.stat().st_size
    # An index cut short after batch b2 committed: its shard is in place, only part of its lines remain.
    records, rows = random_batch(4, 8, HOOKS, seed=2)
    with store.writer() as writer:
        writer.commit_batch("b2", records, rows)
    data = index.read_bytes()
    first_line_end = data.index(b"\n", good_size) + 1
    index.write_bytes(data[: first_line_end + 40])  # one complete line of b2 + a torn line
    # as after a kill mid-append, the count (bumped only once the lines are durable) still says 2 batches;
    # had it counted b2, the read would be refused (test_store_sealing)
    (root / "committed.json").write_text('{"batches":2,"records":8}\n')
    (root / "shards" / ".tmp-batch-x.safetensors.123").write_bytes(b"partial")  # named like a temp file
    reader = ResidualStore.open(root)
    assert len(reader) == 8 and "b2" not in reader.done_batch_ids()
    assert index.stat().st_size > good_size  # reading never modifies the store
    with pytest.warns(StoreLeftoverWarning, match=r"shards/\.tmp-batch-x\.safetensors\.123"):
        with reader.writer() as writer:
            assert writer.kept == ["shards/.tmp-batch-x.safetensors.123"]
    assert index.stat().st_size == good_size
    # both kept: b2's shard as no pending mark proves a writer left it, the temp file as no writer of this
    # store recorded its token (123 is not one)
    assert sorted(p.name for p in (root / "shards").iterdir()) == [
        ".tmp-batch-x.safetensors.123",
        "batch-b0.safetensors",
        "batch-b1.safetensors",
        "batch-b2.safetensors",
    ]
    assert [(p.kind, p.shard) for p in reader.verify()] == [("orphan_shard", "shards/batch-b2.safetensors")]
    with pytest.warns(StoreLeftoverWarning), reader.writer() as writer:  # the rerun commits b2 whole
        writer.commit_batch("b2", records, rows)
    assert len(ResidualStore.open(root)) == 12 and reader.verify() == []


def test_mid_file_damage_is_reported_not_hidden(tmp_path):
    root = tmp_path / "s"
    fill(new_store(root))
    lines = (root / "index.jsonl").read_bytes().split(b"\n")
    lines[2] = b'{"not": "a record"}'
    (root / "index.jsonl").write_bytes(b"\n".join(lines))
    with pytest.raises(RuntimeError, match="not a valid record"):
        ResidualStore.open(root)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"model_fingerprint": "fp-2"}, "model_fingerprint: store has 'fp-1', got 'fp-2'"),
        ({"dtype": "bfloat16"}, "dtype"),
        ({"hook_points": HOOKS[:1]}, "hook_points"),
        ({"d_model": 16}, "d_model"),
    ],
)
def test_mismatched_append_is_refused(tmp_path, change, needle):
    root = tmp_path / "s"
    fill(new_store(root), n_batches=1)
    manifest_before = (root / "manifest.json").read_text()
    original = {"model_name": "m", "model_fingerprint": "fp-1", "hook_points": HOOKS, "d_model": 8}
    with pytest.raises(StoreMismatchError, match=needle) as err:
        ResidualStore.create(root, **{**original, **change})
    assert "new store path" in str(err.value)
    assert (root / "manifest.json").read_text() == manifest_before
    assert len(ResidualStore.create(root, **{**original, "model_name": "renamed"})) == 4
    assert json.loads(manifest_before)["model_name"] == "m"


def test_open_non_store_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="ResidualStore.create"):
        ResidualStore.open(tmp_path)


def test_shard_bytes_close_to_raw_fp16(tmp_path):
    hooks = ["blocks.10.resid_post", "blocks.20.resid_post", "blocks.25.resid_post"]
    store = ResidualStore.create(
        tmp_path / "s", model_name="m", model_fingerprint="f", hook_points=hooks, d_model=576
    )
    with store.writer() as writer:
        for b in range(2):
            records, rows = random_batch(16, 576, hooks, seed=b)
            writer.commit_batch(f"b{b}", records, rows)
    info = store.info()
    raw = info["rows"] * len(hooks) * 2 * 576
    assert info["shard_bytes"] <= 1.02 * raw
    assert info["bytes_per_raw"] == pytest.approx(info["shard_bytes"] / raw)
    assert info["bytes_per_raw_with_index"] > info["bytes_per_raw"]

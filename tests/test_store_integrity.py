"""ResidualStore against damaged or hostile stores: each test builds the broken store and checks the refusal.

Covers: files a person put in the store, a symlinked `shards/`, index lines pointing outside the store,
edited row ranges, an index cut short, flipped shard bytes, the content digest and the writer lock.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from store_worker import random_batch  # noqa: E402

import tripwire.activations.store_shard  # noqa: E402
from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_seal import LINE_SHA256, seal_line  # noqa: E402
from tripwire.activations.store_types import (  # noqa: E402
    StoreCorruptError,
    StoreIntegrityError,
    StoreLeftoverWarning,
    StoreLockedError,
    StoreRecordError,
)

HOOKS = ["h0", "h1"]


def make_store(path: Path, n_batches: int = 3, seed: int = 0) -> ResidualStore:
    store = ResidualStore.create(path, model_name="m", model_fingerprint="f", hook_points=HOOKS, d_model=4)
    with store.writer() as writer:
        for b in range(n_batches):
            writer.commit_batch(f"b{b}", *random_batch(3, 4, HOOKS, seed=seed + b))
    return store


def edit_index(root: Path, line_no: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite one index line and re-seal it, as a deliberate forger would: the checks behind the line
    checksum (refused on its own in test_store_sealing) must still hold, e.g. for unsealed stores."""
    lines = (root / "index.jsonl").read_text().splitlines(keepends=True)
    obj = json.loads(lines[line_no])
    obj.pop(LINE_SHA256)
    change(obj)
    lines[line_no] = seal_line(obj).decode()
    (root / "index.jsonl").write_text("".join(lines))


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # inside the last record's rows of the last tensor
    path.write_bytes(bytes(data))


def read_everything(store: ResidualStore) -> None:
    for rec in store.records():
        store.activations(rec, HOOKS[0])
    store.query(HOOKS[1], label="y")
    list(store.iter_batches(HOOKS[0], 5))


# ---- 1. a writer deletes only files it made ------------------------------------------------------------


def test_writer_keeps_files_it_does_not_own(tmp_path):
    root = tmp_path / "s"
    make_store(root)
    shard = (root / "shards/batch-b0.safetensors").read_bytes()
    foreign = {
        "shards/NOTES.txt": b"why these batches",
        "shards/batch-b0.safetensors.bak": shard,
        "shards/batch-from-another-run.safetensors": shard,
        "shards/.tmp-scratch": b"mine",
        ".tmp-manifest.json.bak": b"a backup",
    }
    for name, data in foreign.items():
        (root / name).write_bytes(data)
    with pytest.warns(StoreLeftoverWarning, match=r"kept \.tmp-manifest\.json\.bak: named like"):  # kept, said so
        with ResidualStore.open(root).writer() as writer:
            writer.commit_batch("b3", *random_batch(2, 4, HOOKS, seed=9))
    assert {name: (root / name).read_bytes() for name in foreign} == foreign
    assert [(p.kind, p.shard) for p in ResidualStore.open(root).verify()] == [
        ("orphan_shard", "shards/batch-from-another-run.safetensors")
    ]


def test_symlinked_shards_dir_is_refused_and_the_other_store_untouched(tmp_path):
    other = tmp_path / "other"
    make_store(other)
    before = {p.name: p.read_bytes() for p in (other / "shards").iterdir()}
    root = tmp_path / "s"
    make_store(root, n_batches=1, seed=50)
    shutil.rmtree(root / "shards")
    (root / "shards").symlink_to(other / "shards")
    store = ResidualStore.open(root)
    with pytest.raises(StoreCorruptError, match="is a symlink") as err:
        with store.writer():
            pass
    assert str(root / "shards") in str(err.value) and "real directory" in str(err.value)
    with pytest.raises(StoreCorruptError, match="is a symlink"):
        store.activations(store.records()[0], HOOKS[0])
    assert [(p.kind, p.shard) for p in store.verify()] == [("unsafe_path", "shards/")]
    assert {p.name: p.read_bytes() for p in (other / "shards").iterdir()} == before
    assert ResidualStore.open(other).verify() == []


def test_symlinked_shard_file_is_refused(tmp_path):
    other, root = tmp_path / "other", tmp_path / "s"
    make_store(other)
    store = make_store(root)
    (root / "shards/batch-b1.safetensors").unlink()
    (root / "shards/batch-b1.safetensors").symlink_to(other / "shards/batch-b1.safetensors")
    victim = next(r for r in store.records() if r.batch_id == "b1")
    with pytest.raises(StoreCorruptError, match="is a symlink"):
        store.activations(victim, HOOKS[0])
    assert [(p.kind, p.shard) for p in store.verify()] == [("unsafe_path", "shards/batch-b1.safetensors")]


# ---- 2. reads never follow an index out of the store, and check row ranges -----------------------------


@pytest.mark.parametrize("target", ["../../other/shards/batch-b0.safetensors", "/etc/passwd"])
def test_index_shard_outside_the_store_is_refused(tmp_path, target):
    other, root = tmp_path / "other", tmp_path / "s"
    make_store(other)
    make_store(root)
    other_sha = ResidualStore.open(other).records()[0].shard_sha256
    edit_index(root, 0, lambda rec: rec.update(shard=target, shard_sha256=other_sha))
    with pytest.raises(StoreCorruptError) as err:
        ResidualStore.open(root)
    message = str(err.value)
    assert target in message and "shards/batch-b0.safetensors" in message and "restore it" in message


@pytest.mark.parametrize("line_no", [1, 2], ids=["middle-record", "last-record"])
def test_shifted_row_offset_is_caught(tmp_path, line_no):
    root = tmp_path / "s"
    make_store(root)
    edit_index(root, line_no, lambda rec: rec.update(row_offset=rec["row_offset"] + 1))
    store = ResidualStore.open(root)
    edited = store.records()[line_no]
    problems = store.verify()
    assert problems and {(p.kind, p.shard) for p in problems} == {
        ("bad_row_range", "shards/batch-b0.safetensors")
    }
    assert problems[0].record_ids == [edited.record_id]
    with pytest.raises(StoreCorruptError, match="tripwire store verify") as err:
        store.activations(store.records()[0], HOOKS[0])
    assert edited.record_id in str(err.value) and "shards/batch-b0.safetensors" in str(err.value)
    with pytest.raises(StoreCorruptError):
        store.query(HOOKS[0])
    other_batch = store.records()[3]
    assert store.activations(other_batch, HOOKS[0]).shape == (other_batch.row_count, 4)


def test_index_cut_short_is_refused_and_its_shard_kept(tmp_path):
    root = tmp_path / "s"
    make_store(root)
    index = root / "index.jsonl"
    index.write_bytes(index.read_bytes()[:-10])  # the last line of batch b2 loses its tail
    # committed.json says b2 was committed: reading b0-b1 as the whole store would silently drop it
    with pytest.raises(StoreIntegrityError, match="holds 6 records of 9 committed") as err:
        ResidualStore.open(root)
    assert str(index) in str(err.value) and "tail is missing" in str(err.value)
    assert (root / "shards/batch-b2.safetensors").is_file()


# ---- 3. reads check shard bytes, once per shard per process ---------------------------------------------


def test_flipped_byte_is_refused_by_every_read(tmp_path):
    root = tmp_path / "s"
    make_store(root)
    flip_byte(root / "shards/batch-b1.safetensors")
    store = ResidualStore.open(root)
    victim = next(r for r in store.records() if r.batch_id == "b1")
    reads: list[Callable[[], object]] = [
        lambda: store.activations(victim, HOOKS[0]),
        lambda: store.query(HOOKS[0]),
        lambda: list(store.iter_batches(HOOKS[1], 4, label="y")),
        lambda: store.content_digest([victim]),
    ]
    for read in reads:
        with pytest.raises(StoreIntegrityError) as err:
            read()
        message = str(err.value)
        assert "shards/batch-b1.safetensors" in message and str(root) in message
        assert f"tripwire store verify {root}" in message
    assert isinstance(err.value, StoreCorruptError)
    fine = next(r for r in store.records() if r.batch_id == "b0")
    assert store.activations(fine, HOOKS[0]).shape == (fine.row_count, 4)


def test_each_shard_is_hashed_once_per_process_until_it_changes(tmp_path, monkeypatch):
    root = tmp_path / "s"
    make_store(root)
    hashed: list[str] = []
    real = tripwire.activations.store_shard.sha256_file

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(tripwire.activations.store_shard, "sha256_file", counting)
    read_everything(ResidualStore.open(root))
    read_everything(ResidualStore.open(root))
    assert sorted(hashed) == ["batch-b0.safetensors", "batch-b1.safetensors", "batch-b2.safetensors"]
    path = root / "shards/batch-b2.safetensors"
    st = path.stat()
    flip_byte(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the rewrite lands a tick later, as on disk
    with pytest.raises(StoreIntegrityError):
        read_everything(ResidualStore.open(root))
    assert hashed.count("batch-b2.safetensors") == 2


# ---- content digest ------------------------------------------------------------------------------------


def test_content_digest_names_the_rows(tmp_path):
    a = make_store(tmp_path / "a")
    b = make_store(tmp_path / "b")
    records = a.records()
    digest = a.content_digest(records)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert a.content_digest(list(reversed(records)) + records[:2]) == digest
    assert b.content_digest(b.records()) == digest  # same rows written twice: same digest
    assert a.content_digest(records[:-1]) != digest
    other_rows = make_store(tmp_path / "c", seed=7)
    assert other_rows.content_digest(other_rows.records()) != digest
    with pytest.raises(StoreRecordError, match="not stored"):
        a.content_digest(other_rows.records()[:1])


# ---- 5. the writer lock --------------------------------------------------------------------------------


def test_second_writer_in_process_is_refused_until_release(tmp_path):
    root = tmp_path / "s"
    store = make_store(root, n_batches=1)
    with store.writer():
        with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}") as err:
            with ResidualStore.open(root).writer():
                pass
        assert str(root) in str(err.value) and "different store path" in str(err.value)
    with ResidualStore.open(root).writer() as writer:
        writer.commit_batch("b1", *random_batch(2, 4, HOOKS, seed=3))
    assert ResidualStore.open(root).done_batch_ids() == {"b0", "b1"}

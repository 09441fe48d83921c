"""No path outside the store is written, and no file of someone else's is deleted (issue 24, items 5-7).

Each test builds the hostile store for real (symlinks to files outside it, a person's files named like the
writer's temp files) and checks the refusal, or that the files survive a resume byte for byte.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from store_worker import random_batch  # noqa: E402

from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_lock import WriterLock  # noqa: E402
from tripwire.activations.store_types import StoreLeftoverWarning, StoreUnsafePathError  # noqa: E402

HOOKS = ["h0", "h1"]


def create(path: Path) -> ResidualStore:
    return ResidualStore.create(path, model_name="m", model_fingerprint="f", hook_points=HOOKS, d_model=4)


def make_store(path: Path, n_batches: int = 2) -> ResidualStore:
    store = create(path)
    with store.writer() as writer:
        for b in range(n_batches):
            writer.commit_batch(f"b{b}", *random_batch(3, 4, HOOKS, seed=b))
    return store


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- 5. every file the store writes is opened without following a link ---------------------------------


@pytest.mark.parametrize("name", ["index.jsonl", "manifest.json", "committed.json", ".lock", ".lock-holder"])
def test_a_symlinked_store_file_is_refused_and_its_target_untouched(tmp_path, name):
    root, outside = tmp_path / "s", tmp_path / "outside"
    make_store(root)
    outside.mkdir()
    target = outside / name
    if (root / name).exists():
        shutil.move(root / name, target)  # the store's own file, now outside it
    else:
        target.write_bytes(b"someone else's file\n")  # .lock-holder exists only while a writer runs
    (root / name).symlink_to(target)
    before = target.read_bytes()
    with pytest.raises(StoreUnsafePathError) as err:
        with ResidualStore.open(root).writer() as writer:
            writer.commit_batch("b9", *random_batch(2, 4, HOOKS, seed=9))
    message = str(err.value)
    assert str(root / name) in message and "is a symlink" in message and "replace the link" in message
    with pytest.raises(StoreUnsafePathError):  # creating (reopening) it is refused the same way
        create(root)
    assert target.read_bytes() == before and (root / name).is_symlink()


def test_a_symlinked_index_is_never_appended_to(tmp_path):
    """The issue's case: a capture appended its records to an index.jsonl outside the store."""
    root, other = tmp_path / "s", tmp_path / "other"
    make_store(root, n_batches=1)
    make_store(other, n_batches=1)
    (root / "index.jsonl").unlink()
    (root / "index.jsonl").symlink_to(other / "index.jsonl")
    before = files(other)
    with pytest.raises(StoreUnsafePathError, match="index.jsonl is a symlink"):
        ResidualStore.open(root)
    with pytest.raises(StoreUnsafePathError, match="index.jsonl is a symlink"):
        with WriterLock(root).hold():
            pass
    assert files(other) == before and ResidualStore.open(other).verify() == []


# ---- 7. a refused fresh store is left exactly as it was ---------------------------------------------------


def test_a_fresh_store_with_a_symlinked_shards_dir_is_refused_before_anything_is_written(tmp_path):
    root, elsewhere = tmp_path / "s", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "shards").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StoreUnsafePathError, match="is a symlink") as err:
        create(root)
    assert str(root / "shards") in str(err.value)
    with pytest.raises(StoreUnsafePathError):  # nor may a lock taken before a model load create anything
        WriterLock(root).acquire()
    assert [p.name for p in root.iterdir()] == ["shards"] and list(elsewhere.iterdir()) == []


# ---- 6. a resume deletes only what a writer of this store provably made -----------------------------------


def test_a_resume_keeps_files_that_are_only_named_like_the_writers(tmp_path):
    root = tmp_path / "s"
    make_store(root)
    shard = (root / "shards/batch-b0.safetensors").read_bytes()
    fake_token = "0123456789abcdef" * 2  # well formed, but no writer of this store recorded it
    mine = {
        ".pending-mine": b"",
        "shards/batch-mine.safetensors": shard,
        ".tmp-manifest.json.12345": b"a backup",
        "shards/.tmp-batch-abc.safetensors.77": b"scratch",
        f".pending-b7.{fake_token}": b"",
        "shards/batch-b7.safetensors": shard,
        f".tmp-committed.json.{fake_token}": b"a note",
    }
    for name, data in mine.items():
        (root / name).write_bytes(data)
    with pytest.warns(StoreLeftoverWarning) as caught:
        with ResidualStore.open(root).writer() as writer:  # a resume: recovery runs first
            writer.commit_batch("b2", *random_batch(3, 4, HOOKS, seed=2))
    assert {name: (root / name).read_bytes() for name in mine} == mine
    reported = [".pending-b7." + fake_token, ".pending-mine", ".tmp-committed.json." + fake_token,
                ".tmp-manifest.json.12345", "shards/.tmp-batch-abc.safetensors.77"]
    assert writer.kept == reported
    warning = next(w for w in caught if w.category is StoreLeftoverWarning)
    message = str(warning.message)
    assert all(name in message for name in reported) and "delete it yourself" in message
    assert warning.filename == __file__  # points at the `with ... writer()` that resumed
    store = ResidualStore.open(root)
    assert store.done_batch_ids() == {"b0", "b1", "b2"}
    assert [(p.kind, p.shard) for p in store.verify()] == [
        ("orphan_shard", "shards/batch-b7.safetensors"),
        ("orphan_shard", "shards/batch-mine.safetensors"),
    ]


def test_the_journal_is_gone_after_a_clean_run(tmp_path):
    """A clean writer leaves no token behind: only a crash leaves the proof recovery needs."""
    root = tmp_path / "s"
    make_store(root)
    assert not (root / ".lock-holder").exists()
    lock = WriterLock(root)
    with lock.hold():
        assert lock.token is not None and lock.token in (root / ".lock-holder").read_text()
    assert not (root / ".lock-holder").exists()

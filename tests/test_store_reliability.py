"""Crash, corruption, contention and resource-exhaustion tests of ResidualStore + run_batches.

Writers run in child processes forked from one forkserver (torch and transformers imported once), so
each SIGKILLed worker is a real separate process yet costs milliseconds, not a fresh interpreter.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

import store_worker  # noqa: E402
from store_worker import CRASH_POINTS, random_batch  # noqa: E402

from tripwire.activations.runner import batch_id_for, plan_batches  # noqa: E402
from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_types import (  # noqa: E402
    StoreIntegrityError,
    StoreLeftoverWarning,
    StoreLockedError,
)

N_ITEMS, BATCH = 24, 4
CTX = multiprocessing.get_context("forkserver")
# The forkserver cannot see tests/ on its path, so it preloads the heavy imports the workers share.
CTX.set_forkserver_preload(["torch", "transformers.models.llama.modeling_llama", "tripwire.activations.runner"])


def in_child(target: Any, *args: Any, timeout: float = 60) -> int | None:
    proc = CTX.Process(target=target, args=args)
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        pytest.fail(f"{target.__name__} child did not finish in {timeout}s")
    return proc.exitcode


def capture(store: Path, log: Path, crash_at: str = "", crash_after: int = 1, n: int = N_ITEMS) -> int | None:
    return in_child(store_worker.capture, str(store), n, BATCH, str(log), crash_at, crash_after)


def snapshot(path: Path) -> dict[str, Any]:
    """Everything a rerun must reproduce exactly: record metadata and every row's bytes."""
    store = ResidualStore.open(path)
    return {
        "records": [r.to_json() for r in store.records()],
        "rows": {h: store.query(h).X.view(torch.int16).clone() for h in store.manifest.hook_points},
    }


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["records"] == b["records"]
    for hook, rows in a["rows"].items():
        assert torch.equal(rows, b["rows"][hook]), hook


def assert_clean(path: Path) -> None:
    """Only committed shards on disk: no temp files or marks, no orphans, no duplicates, checksums ok."""
    store = ResidualStore.open(path)
    ids = [r.record_id for r in store.records()]
    assert len(ids) == len(set(ids))
    on_disk = sorted(f"shards/{p.name}" for p in (path / "shards").iterdir())
    assert on_disk == sorted({r.shard for r in store.records()})
    own_files = {"manifest.json", "index.jsonl", "committed.json", "shards", ".lock"}
    assert {p.name for p in path.iterdir()} <= own_files
    count = json.loads((path / "committed.json").read_text())
    assert count == {"batches": len(store.done_batch_ids()), "records": len(ids)}  # rolled forward, exact
    assert store.verify() == []


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("reference")
    assert capture(root / "store", root / "log") == 0
    all_batches = [
        batch_id_for([it.record_id for it in c])
        for c in plan_batches(store_worker.make_items(N_ITEMS), BATCH)
    ]
    assert (root / "log").read_text().split() == all_batches
    return {"snapshot": snapshot(root / "store"), "batches": all_batches}


# (crash point, hit on which it fires, batches committed when it fires)
CRASHES = [
    ("after_lock", 2, 0),  # hit 1 is create()'s lock, hit 2 the runner's
    ("after_recovery", 1, 0),
    ("before_batch_compute", 3, 2),
    ("mid_batch_compute", 3, 2),
    ("after_batch_compute", 3, 2),
    ("before_shard_write", 3, 2),
    ("mid_shard_write", 3, 2),
    ("after_shard_fsync", 3, 2),
    ("after_shard_rename", 3, 2),
    ("before_index_append", 3, 2),
    ("mid_index_append", 3, 2),
    ("after_index_append", 3, 3),
    ("mid_count_write", 4, 3),  # hit 1 is create()'s zero count; the batch's index lines are durable
    ("between_batches", 3, 3),
]


def test_every_crash_point_is_tested():
    assert sorted(p for p, _, _ in CRASHES) == sorted(CRASH_POINTS)


@pytest.mark.parametrize(("point", "after", "n_committed"), CRASHES, ids=[c[0] for c in CRASHES])
def test_crash_then_rerun_equals_uninterrupted_run(tmp_path, reference, point, after, n_committed):
    store, log = tmp_path / "store", tmp_path / "log"
    assert capture(store, log, point, after) == -signal.SIGKILL
    committed = ResidualStore.open(store).done_batch_ids()
    assert committed == set(reference["batches"][:n_committed])
    log.write_text("")
    assert capture(store, log) == 0
    recomputed = log.read_text().split()
    assert recomputed == [b for b in reference["batches"] if b not in committed]
    assert_same(snapshot(store), reference["snapshot"])
    assert_clean(store)


def test_flipped_byte_is_named_by_verify_and_refused_by_reads(tmp_path, reference):
    from typer.testing import CliRunner

    from tripwire.cli.store import store_app

    store_path = tmp_path / "store"
    assert capture(store_path, tmp_path / "log") == 0
    store = ResidualStore.open(store_path)
    victim = store.records()[5]
    shard = store_path / victim.shard
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF  # inside the last record's rows of the last tensor
    shard.write_bytes(bytes(data))
    problems = store.verify()
    assert [(p.kind, p.shard) for p in problems] == [("checksum_mismatch", victim.shard)]
    batch_ids = {r.record_id for r in store.records() if r.shard == victim.shard}
    assert problems[0].record_ids and set(problems[0].record_ids) <= batch_ids
    for read in (lambda h: store.query(h), lambda h: store.activations(victim, h)):
        with pytest.raises(StoreIntegrityError) as err:
            read(store.manifest.hook_points[0])
        assert victim.shard in str(err.value) and str(store_path) in str(err.value)
        assert "tripwire store verify" in str(err.value)
    ref_rows = reference["snapshot"]["rows"]
    ends = torch.tensor([r.row_count for r in store.records()]).cumsum(0).tolist()
    for i, rec in enumerate(store.records()):
        if rec.shard == victim.shard:
            continue
        for hook in store.manifest.hook_points:
            expected = ref_rows[hook][ends[i] - rec.row_count : ends[i]]
            assert torch.equal(store.activations(rec, hook).view(torch.int16), expected)
    result = CliRunner().invoke(_cli(store_app), ["store", "verify", str(store_path)])
    assert result.exit_code == 1 and victim.shard in result.output
    shard.unlink()
    assert [p.kind for p in ResidualStore.open(store_path).verify()] == ["missing_shard"]


# crash points after which the crashed batch left files behind (hit 3: batches 1-2 are committed)
LEFTOVERS = [
    "mid_shard_write",
    "after_shard_fsync",
    "after_shard_rename",
    "before_index_append",
    "mid_index_append",
]


@pytest.mark.parametrize("point", [*LEFTOVERS, "after_index_append"])
def test_recovery_deletes_only_what_the_crashed_writer_left(tmp_path, reference, point):
    store, log = tmp_path / "store", tmp_path / "log"
    assert capture(store, log, point, 3) == -signal.SIGKILL
    crashed = reference["batches"][2]
    left = {p.name for p in [*store.iterdir(), *(store / "shards").iterdir()]}
    # the writer marked the batch (with its token) before writing any of it
    assert any(n.startswith(f".pending-{crashed}.") for n in left)
    assert (f"batch-{crashed}.safetensors" in left) == (point not in ("mid_shard_write", "after_shard_fsync"))
    assert any(n.startswith(".tmp-batch-") for n in left) == (
        point in ("mid_shard_write", "after_shard_fsync")
    )
    torn_size = (store / "index.jsonl").stat().st_size
    committed = reference["batches"][:3] if point == "after_index_append" else reference["batches"][:2]
    first = (store / f"shards/batch-{committed[0]}.safetensors").read_bytes()
    foreign = {  # files a person put in the store: none may be deleted or rewritten
        "NOTES.txt": b"notes",
        "shards/NOTES.txt": b"shard notes",
        f"shards/batch-{committed[0]}.safetensors.bak": first,
        "shards/batch-copied-from-elsewhere.safetensors": first,
        "shards/.tmp-my-scratch": b"mine",
        ".tmp-notes": b"mine too",
        # named exactly like a writer's leftovers, but with no token a writer of this store recorded
        ".pending-mine": b"",
        "shards/batch-mine.safetensors": first,
        ".tmp-manifest.json.12345": b"a backup",
        "shards/.tmp-batch-abc.safetensors.77": b"scratch",
    }
    lookalikes = [".pending-mine", ".tmp-manifest.json.12345", "shards/.tmp-batch-abc.safetensors.77"]
    for name, data in foreign.items():
        (store / name).write_bytes(data)
    with pytest.warns(StoreLeftoverWarning, match="no writer of this store recorded its token") as caught:
        with ResidualStore.open(store).writer() as writer:
            assert writer.kept == lookalikes  # reported, not removed
    message = next(str(w.message) for w in caught if w.category is StoreLeftoverWarning)
    assert all(name in message for name in lookalikes)
    assert {name: (store / name).read_bytes() for name in foreign} == foreign
    assert ((store / "index.jsonl").stat().st_size < torn_size) == (point == "mid_index_append")
    reopened = ResidualStore.open(store)
    assert sorted(reopened.done_batch_ids()) == sorted(committed)
    now = {p.name for p in [*store.iterdir(), *(store / "shards").iterdir()]}
    assert {n for n in now if n.startswith((".pending-", ".tmp-batch-"))} == {
        ".pending-mine",
        ".tmp-batch-abc.safetensors.77",
    }  # the crashed writer's own are gone
    assert (f"batch-{crashed}.safetensors" in now) == (crashed in committed)
    assert [(p.kind, p.shard) for p in reopened.verify()] == [
        ("orphan_shard", "shards/batch-copied-from-elsewhere.safetensors"),
        ("orphan_shard", "shards/batch-mine.safetensors"),
    ]


def _cli(sub_app: Any) -> Any:
    import typer

    app = typer.Typer()
    app.add_typer(sub_app, name="store")
    return app


def test_second_writer_is_refused(tmp_path):
    root = tmp_path / "s"
    ResidualStore.create(root, model_name="m", model_fingerprint="f", hook_points=["h"], d_model=8)
    parent, child = CTX.Pipe()
    proc = CTX.Process(target=store_worker.hold_lock, args=(str(root), child))
    proc.start()
    holder_pid = parent.recv()
    store = ResidualStore.open(root)
    with pytest.raises(StoreLockedError) as err:
        with store.writer():
            pass
    assert str(root) in str(err.value) and f"pid {holder_pid}" in str(err.value)
    with pytest.raises(StoreLockedError):  # create() of an existing store needs no lock, writing does
        with ResidualStore.create(
            root, model_name="m", model_fingerprint="f", hook_points=["h"], d_model=8
        ).writer():
            pass
    parent.send("commit")
    assert parent.recv() == "done"
    proc.join(30)
    reopened = ResidualStore.open(root)
    assert reopened.done_batch_ids() == {"held"} and reopened.verify() == []
    with reopened.writer() as writer:  # released: a new writer gets in
        writer.commit_batch("after", *random_batch(2, 8, ["h"], seed=5))
    assert_clean(root)


def _commit_in_child(
    root: Path, batch_id: str, n_records: int, seed: int, *, fsize_limit: int, uid: int
) -> dict[str, str]:
    parent, child = CTX.Pipe()
    args = (str(root), batch_id, n_records, seed, child, fsize_limit, uid)
    exitcode = in_child(store_worker.commit_limited, *args)
    assert exitcode == 0
    return parent.recv()


def test_disk_full_shard_write(tmp_path):
    root = tmp_path / "s"
    store = ResidualStore.create(
        root, model_name="m", model_fingerprint="f", hook_points=["a", "b"], d_model=64
    )
    with store.writer() as writer:
        writer.commit_batch("first", *random_batch(4, 64, ["a", "b"], seed=0))
    before = snapshot(root)
    result = _commit_in_child(root, "second", 8, 1, fsize_limit=4096, uid=-1)
    assert result["error"] == "StoreWriteError" and "cannot write shard" in result["message"]
    assert "File too large" in result["message"] or "No space" in result["message"]
    assert_same(snapshot(root), before)
    assert_clean(root)
    with ResidualStore.open(root).writer() as writer:  # with space again the same batch commits
        writer.commit_batch("second", *random_batch(8, 64, ["a", "b"], seed=1))
    assert len(ResidualStore.open(root)) == 12


def test_disk_full_index_append_rolls_back(tmp_path):
    root = tmp_path / "s"
    store = ResidualStore.create(root, model_name="m", model_fingerprint="f", hook_points=["a"], d_model=4)
    with store.writer() as writer:
        records, rows = random_batch(20, 4, ["a"], seed=0, text_len=2000)
        writer.commit_batch("big-text", records, rows)
    index_size = (root / "index.jsonl").stat().st_size
    before = snapshot(root)
    # the tiny shard fits under the limit, the index append hits it part-way through
    result = _commit_in_child(root, "second", 2, 1, fsize_limit=index_size + 100, uid=-1)
    assert result["error"] == "StoreWriteError" and "index" in result["message"]
    assert (root / "index.jsonl").stat().st_size == index_size
    assert_same(snapshot(root), before)
    assert_clean(root)


def test_unwritable_directory(tmp_path):
    # Tests run as root, which ignores permissions; the child drops to `nobody` instead.
    base = Path(tempfile.mkdtemp(prefix="tripwire-store-"))
    try:
        base.chmod(0o755)
        root = base / "s"
        store = ResidualStore.create(
            root, model_name="m", model_fingerprint="f", hook_points=["a"], d_model=8
        )
        with store.writer() as writer:
            writer.commit_batch("first", *random_batch(3, 8, ["a"], seed=0))
        before = snapshot(root)
        if os.geteuid() == 0:
            (root / ".lock").chmod(0o666)
            uid = 65534
        else:
            (root / "shards").chmod(0o555)
            uid = -1
        result = _commit_in_child(root, "second", 2, 1, fsize_limit=0, uid=uid)
        assert result["error"] == "StoreWriteError" and "Permission denied" in result["message"]
        (root / "shards").chmod(0o755)
        assert_same(snapshot(root), before)
        assert_clean(root)
    finally:
        shutil.rmtree(base)


@pytest.mark.slow
def test_random_kills_of_a_real_worker(tmp_path):
    """SIGKILL a freshly started worker process at seeded random moments, then let it finish."""
    n, batch_sleep = 80, 0.03
    n_batches = -(-n // BATCH)
    assert capture(tmp_path / "ref", tmp_path / "ref.log", n=n) == 0
    expected = snapshot(tmp_path / "ref")
    store, log = tmp_path / "store", tmp_path / "log"
    cmd = [
        sys.executable,
        str(Path(__file__).parent / "store_worker.py"),
        "--store",
        str(store),
        "--n",
        str(n),
    ]
    cmd += ["--batch-size", str(BATCH), "--log", str(log), "--batch-sleep", str(batch_sleep)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    rng = random.Random(1234)
    kills = 0
    for attempt in range(6):
        committed = (
            ResidualStore.open(store).done_batch_ids() if (store / "manifest.json").exists() else set()
        )
        log.write_text("")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        if attempt < 5:  # five seeded random kills, then one uninterrupted run
            # each remaining batch takes at least batch_sleep, so the kill lands before the run ends
            time.sleep(rng.uniform(0.05, 0.8) * batch_sleep * (n_batches - len(committed)))
            proc.send_signal(signal.SIGKILL)
        kills += proc.wait(60) == -signal.SIGKILL
        assert not set(log.read_text().split()) & committed, "a committed batch was recomputed"
        assert committed <= ResidualStore.open(store).done_batch_ids()
    assert proc.returncode == 0 and kills == 5
    assert_same(snapshot(store), expected)
    assert_clean(store)

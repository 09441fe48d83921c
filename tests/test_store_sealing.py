"""The store's index is sealed: edited lines and a cut-short index are refused by every read (issue 24).

1. Every index line carries the sha256 of its own content: a flipped label or shifted positions, which the
   shard checksums cannot see, is refused on open, naming the line and record.
2. `committed.json` counts the committed batches and records: an index holding fewer (its tail deleted) is
   refused instead of silently reading a subset; an index *ahead* of the count (a crash between the append
   and the count update) reads fine and a writer rolls the count forward.
Stores written before sealing (schema_version 1) still open, as unsealed, with a one-time warning.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from store_worker import random_batch  # noqa: E402

from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_types import StoreCorruptError, StoreIntegrityError  # noqa: E402
from tripwire.cli.store import store_app  # noqa: E402

HOOKS = ["h0", "h1"]
app = typer.Typer()
app.add_typer(store_app, name="store")
runner = CliRunner()


def make_store(path: Path, n_batches: int = 3) -> ResidualStore:
    """Three batches of four records: 12 records, lines 1-4, 5-8, 9-12 of the index."""
    store = ResidualStore.create(path, model_name="m", model_fingerprint="f", hook_points=HOOKS, d_model=4)
    with store.writer() as writer:
        for b in range(n_batches):
            writer.commit_batch(f"b{b}", *random_batch(4, 4, HOOKS, seed=b))
    return store


def edit_line(root: Path, line_no: int, change: Callable[[dict[str, Any]], None]) -> str:
    """Rewrite one index line (0-based) as a person would; returns the record id on it."""
    lines = (root / "index.jsonl").read_text().splitlines(keepends=True)
    obj = json.loads(lines[line_no])
    change(obj)
    lines[line_no] = json.dumps(obj) + "\n"
    (root / "index.jsonl").write_text("".join(lines))
    return str(obj["record_id"])


def drop_last_lines(root: Path, n: int) -> None:
    lines = (root / "index.jsonl").read_bytes().splitlines(keepends=True)
    (root / "index.jsonl").write_bytes(b"".join(lines[:-n]))


def cli(*args: str) -> Any:
    return runner.invoke(app, ["store", *args])


# ---- 1. every index line is sealed --------------------------------------------------------------------


def _flip_label(rec: dict[str, Any]) -> None:
    rec["labels"]["y"] = 1 - rec["labels"]["y"]


def _shift_positions(rec: dict[str, Any]) -> None:
    rec["positions"] = [p - 1 for p in rec["positions"]]


@pytest.mark.parametrize(
    "change", [_flip_label, _shift_positions], ids=["flipped-label", "shifted-positions"]
)
@pytest.mark.parametrize("line_no", [0, 5, 11], ids=["first", "middle", "last"])
def test_an_edited_index_line_is_refused_by_every_read(tmp_path, change, line_no):
    root = tmp_path / "s"
    make_store(root)
    rid = edit_line(root, line_no, change)
    with pytest.raises(StoreIntegrityError) as err:
        ResidualStore.open(root)
    message = str(err.value)
    assert str(root / "index.jsonl") in message and f"line {line_no + 1}" in message and rid in message
    assert "edited or damaged" in message and "new store" in message
    assert isinstance(err.value, StoreCorruptError)
    with pytest.raises(StoreIntegrityError):  # a writer (resume) refuses too: it would extend a lie
        with ResidualStore.open(root).writer():
            pass
    for command in (["verify", str(root)], ["show", str(root)], ["info", str(root)]):
        result = cli(*command)
        assert result.exit_code == 2, (command, result.output)
        assert "index.jsonl" in result.output and rid in result.output


def test_a_removed_seal_is_refused(tmp_path):
    root = tmp_path / "s"
    make_store(root)
    rid = edit_line(root, 2, lambda rec: rec.pop("line_sha256"))
    with pytest.raises(StoreIntegrityError, match="no checksum") as err:
        ResidualStore.open(root)
    assert rid in str(err.value) and "line 3" in str(err.value)


def test_reformatting_a_line_without_changing_it_still_reads(tmp_path):
    root = tmp_path / "s"
    before = make_store(root).records()
    edit_line(root, 4, lambda rec: None)  # json.dumps spacing and key order, same content
    assert ResidualStore.open(root).records() == before


def test_new_stores_are_sealed(tmp_path):
    root = tmp_path / "s"
    store = make_store(root)
    assert store.sealed and store.info()["sealed"] is True
    assert json.loads((root / "manifest.json").read_text())["schema_version"] == 2
    lines = [json.loads(line) for line in (root / "index.jsonl").read_text().splitlines()]
    assert all(len(line["line_sha256"]) == 64 for line in lines)
    assert json.loads((root / "committed.json").read_text()) == {"batches": 3, "records": 12}
    result = cli("verify", str(root))
    assert result.exit_code == 0 and "unsealed" not in result.output


# ---- stores written before sealing ----------------------------------------------------------------------


def make_legacy_store(path: Path) -> list[Any]:
    """A store as the previous tripwire wrote it: schema_version 1, no line checksums, no commit count."""
    records = make_store(path).records()
    lines = [json.loads(line) for line in (path / "index.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("line_sha256")
    (path / "index.jsonl").write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 1}, indent=2))
    (path / "committed.json").unlink()
    return records


def test_a_legacy_store_opens_as_unsealed_with_a_one_time_warning(tmp_path):
    from tripwire.activations.store_types import StoreUnsealedWarning

    root = tmp_path / "old"
    records = make_legacy_store(root)
    with pytest.warns(StoreUnsealedWarning, match="unsealed") as caught:
        store = ResidualStore.open(root)
        ResidualStore.open(root)
    assert len(caught) == 1 and str(root) in str(caught[0].message)
    assert store.records() == records and not store.sealed and store.info()["sealed"] is False
    assert store.query(HOOKS[0], label="y").X.shape[0] == sum(r.row_count for r in records)
    result = cli("verify", str(root))
    assert result.exit_code == 0 and "unsealed" in result.output and "ok: 3 shards verified" in result.output


def test_appending_to_a_legacy_store_seals_the_new_lines_and_keeps_it_readable(tmp_path):
    root = tmp_path / "old"
    make_legacy_store(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ResidualStore.open(root).writer() as writer:
            writer.commit_batch("b3", *random_batch(2, 4, HOOKS, seed=3))
        store = ResidualStore.open(root)
        assert len(store) == 14 and not store.sealed
        assert (
            json.loads((root / "manifest.json").read_text())["schema_version"] == 1
        )  # old readers still read it
        assert json.loads((root / "committed.json").read_text()) == {"batches": 4, "records": 14}
        rid = edit_line(root, 13, _flip_label)  # a sealed line in an unsealed store is still checked
        with pytest.raises(StoreIntegrityError, match="line 14") as err:
            ResidualStore.open(root)
    assert rid in str(err.value)


# ---- 2. a cut-short index is refused ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_lines", "left"), [(1, 8), (4, 8), (5, 4)], ids=["last-line", "last-batch", "more"]
)
def test_an_index_missing_its_tail_is_refused_by_every_read(tmp_path, n_lines, left):
    root = tmp_path / "s"
    make_store(root)
    drop_last_lines(root, n_lines)
    with pytest.raises(StoreIntegrityError) as err:
        ResidualStore.open(root)
    message = str(err.value)
    assert f"holds {left} records of 12 committed" in message and "tail is missing" in message
    assert str(root / "index.jsonl") in message and "committed.json" in message
    with pytest.raises(StoreIntegrityError):
        with ResidualStore.open(root).writer():
            pass
    assert (root / "shards/batch-b2.safetensors").is_file()  # nothing is deleted
    for command in (["verify", str(root)], ["show", str(root)]):
        result = cli(*command)
        assert result.exit_code == 2 and "index.jsonl" in result.output and "12 committed" in result.output


def test_an_index_ahead_of_the_count_reads_and_a_writer_rolls_the_count_forward(tmp_path):
    """What a kill between the index append and the count update leaves: the batch is committed."""
    root = tmp_path / "s"
    make_store(root, n_batches=2)
    count_before = (root / "committed.json").read_bytes()
    with ResidualStore.open(root).writer() as writer:
        writer.commit_batch("b2", *random_batch(4, 4, HOOKS, seed=2))
    (root / "committed.json").write_bytes(count_before)
    assert len(ResidualStore.open(root)) == 12 and ResidualStore.open(root).verify() == []
    with ResidualStore.open(root).writer():
        pass
    assert json.loads((root / "committed.json").read_text()) == {"batches": 3, "records": 12}


def test_a_sealed_store_without_its_commit_count_is_refused(tmp_path):
    root = tmp_path / "s"
    make_store(root)
    (root / "committed.json").unlink()
    with pytest.raises(StoreIntegrityError, match="committed.json") as err:
        ResidualStore.open(root)
    assert str(root) in str(err.value)


def test_a_reader_during_a_commit_never_sees_a_false_cut(tmp_path, monkeypatch):
    """The count is read before the index, and bumped only after the index is durable."""
    import tripwire.activations.store_index as store_index

    root = tmp_path / "s"
    make_store(root, n_batches=1)
    real_read = store_index.read_commit_count
    seen: list[int] = []

    def read_then_writer_commits(path: Path, **kwargs: Any) -> Any:
        count = real_read(path, **kwargs)
        if not seen:  # a writer commits a whole batch between this reader's two reads
            seen.append(1)
            with ResidualStore.open(root).writer() as writer:
                writer.commit_batch("b1", *random_batch(3, 4, HOOKS, seed=1))
        return count

    monkeypatch.setattr(store_index, "read_commit_count", read_then_writer_commits)
    assert len(ResidualStore.open(root)) == 7

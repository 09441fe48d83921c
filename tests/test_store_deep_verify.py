"""`tripwire store verify --deep` re-derives every index line from the shard its batch was written to (issue 24).

A line edited with its own checksum recomputed (a consistent-looking forgery) passes the store's open and
the plain `verify`: each test below shows that first, then that `--deep` refuses it with exit 2, naming
index.jsonl, the line, the record and the field. A store whose shards carry no record header (written
before headers) is reported as not deep-checkable, never as verified.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from store_worker import random_batch  # noqa: E402

from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_deep import SHARD_RECORDS_KEY, content_sha256, deep_verify  # noqa: E402
from tripwire.activations.store_seal import LINE_SHA256, seal_line  # noqa: E402
from tripwire.activations.store_shard import sha256_file  # noqa: E402
from tripwire.cli.store import store_app  # noqa: E402

HOOKS = ["h0", "h1"]
app = typer.Typer()
app.add_typer(store_app, name="store")
runner = CliRunner()


def make_store(path: Path) -> ResidualStore:
    """Three batches of four records: 12 records, lines 1-4, 5-8, 9-12 of the index."""
    store = ResidualStore.create(path, model_name="m", model_fingerprint="f", hook_points=HOOKS, d_model=4)
    with store.writer() as writer:
        for b in range(3):
            writer.commit_batch(f"b{b}", *random_batch(4, 4, HOOKS, seed=b))
    return store


def lines_of(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "index.jsonl").read_text().splitlines()]


def write_lines(root: Path, lines: list[dict[str, Any]]) -> None:
    """The attacker's rewrite: every line sealed again, so each line's own checksum matches its content."""
    sealed = [seal_line({k: v for k, v in line.items() if k != LINE_SHA256}) for line in lines]
    (root / "index.jsonl").write_bytes(b"".join(sealed))


def forge(root: Path, line_no: int, change: Callable[[dict[str, Any]], None]) -> str:
    lines = lines_of(root)
    change(lines[line_no])
    write_lines(root, lines)
    return str(lines[line_no]["record_id"])


def cli(*args: str) -> Any:
    return runner.invoke(app, ["store", *args])


def _flip_label(rec: dict[str, Any]) -> None:
    rec["labels"]["y"] = 1 - rec["labels"]["y"]


def _shift_positions(rec: dict[str, Any]) -> None:
    rec["positions"] = [p - 1 for p in rec["positions"]]


def _rename_record(rec: dict[str, Any]) -> None:
    rec["record_id"] = "f" * 20


def _other_tokens(rec: dict[str, Any]) -> None:
    rec["token_ids"] = [t + 1 for t in rec["token_ids"]]


FORGERIES = {
    "labels": _flip_label, "positions": _shift_positions, "record_id": _rename_record, "token_ids": _other_tokens,
}


@pytest.mark.parametrize("field", list(FORGERIES))
def test_a_forged_line_with_its_checksum_recomputed_passes_plain_verify_and_fails_deep(tmp_path, field):
    root = tmp_path / "s"
    make_store(root)
    rid = forge(root, 5, FORGERIES[field])
    plain = cli("verify", str(root))  # the construction the deep check targets: plain verify cannot see it
    assert plain.exit_code == 0, plain.output
    assert len(ResidualStore.open(root)) == 12
    deep = cli("verify", "--deep", str(root))
    assert deep.exit_code == 2, deep.output
    error = [line for line in deep.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and str(root / "index.jsonl") in error[0] and "1 line(s)" in error[0]
    assert "shards/batch-b1.safetensors" in deep.stderr and rid in deep.stderr
    if field != "record_id":  # a renamed record is named as one the shard does not hold
        assert "line 6" in deep.stderr and "content (labels, positions" in deep.stderr
    assert "Traceback" not in deep.output


def test_two_records_swapped_with_checksums_recomputed_fail_deep(tmp_path):
    """Swapping two lines' record ids attributes each one's rows and labels to the other: the rows still
    tile the shard in index order, so plain verify passes."""
    root = tmp_path / "s"
    make_store(root)
    lines = lines_of(root)
    a, b = lines[4]["record_id"], lines[5]["record_id"]
    lines[4]["record_id"], lines[5]["record_id"] = b, a
    write_lines(root, lines)
    assert cli("verify", str(root)).exit_code == 0
    deep = cli("verify", "--deep", str(root))
    assert deep.exit_code == 2 and "sealed" in deep.stderr and a in deep.stderr and b in deep.stderr


def test_an_untouched_store_passes_deep_and_says_how_many_lines_were_re_derived(tmp_path):
    root = tmp_path / "s"
    store = make_store(root)
    report = deep_verify(root, store.manifest, store.records())
    assert report.problems == [] and report.lines_checked == 12 and report.unverifiable == []
    result = cli("verify", "--deep", str(root))
    assert result.exit_code == 0 and "12 index lines re-derived from 3 shards" in result.output


def test_every_shard_carries_its_records_placement_and_content_digest(tmp_path):
    root = tmp_path / "s"
    store = make_store(root)
    with safe_open(str(root / "shards/batch-b0.safetensors"), framework="pt") as f:
        entries = json.loads(f.metadata()[SHARD_RECORDS_KEY])
    lines = lines_of(root)[:4]
    assert [e["record_id"] for e in entries] == [r.record_id for r in store.records()[:4]]
    assert [e["content_sha256"] for e in entries] == [content_sha256(line) for line in lines]
    assert [(e["row_offset"], e["row_count"]) for e in entries] == [(r.row_offset, r.row_count)
                                                                    for r in store.records()[:4]]


def test_the_shard_header_stays_small(tmp_path):
    """A few hundred bytes per record, whatever its text: the shard stays close to its rows' raw size."""
    root = tmp_path / "s"
    store = ResidualStore.create(root, model_name="m", model_fingerprint="f", hook_points=HOOKS, d_model=4)
    with store.writer() as writer:
        writer.commit_batch("b0", *random_batch(4, 4, HOOKS, seed=0, text_len=50_000))
    with safe_open(str(root / "shards/batch-b0.safetensors"), framework="pt") as f:
        assert len(f.metadata()[SHARD_RECORDS_KEY]) < 300 * 4


def test_shard_rows_that_disagree_with_their_sealed_checksum_fail_deep(tmp_path):
    """A shard rewritten with other rows but its own header kept, and the index's shard checksums updated
    to match (lines resealed): plain verify passes; deep re-hashes the rows."""
    root = tmp_path / "s"
    make_store(root)
    shard = root / "shards/batch-b2.safetensors"
    with safe_open(str(shard), framework="pt") as f:
        header = f.metadata()
    tensors = load_file(str(shard))
    save_file({k: torch.flip(v, dims=[0]).contiguous() for k, v in tensors.items()}, str(shard), metadata=header)
    lines = lines_of(root)
    for line in lines[8:]:
        line["shard_sha256"] = sha256_file(shard)
    write_lines(root, lines)
    assert cli("verify", str(root)).exit_code == 0
    deep = cli("verify", "--deep", str(root))
    assert deep.exit_code == 1 and "rows no longer hash" in deep.stderr and "batch-b2" in deep.stderr


def test_shards_without_a_record_header_are_reported_as_not_checked_not_as_verified(tmp_path):
    """Shards written before headers (rewritten here without one, the index updated to match)."""
    root = tmp_path / "s"
    make_store(root)
    lines = lines_of(root)
    for b in range(3):
        shard = root / f"shards/batch-b{b}.safetensors"
        save_file(load_file(str(shard)), str(shard))
        for line in lines[4 * b : 4 * b + 4]:
            line["shard_sha256"] = sha256_file(shard)
    write_lines(root, lines)
    store = ResidualStore.open(root)
    report = deep_verify(root, store.manifest, store.records())
    assert report.lines_checked == 0 and len(report.unverifiable) == 3 and report.problems == []
    result = cli("verify", "--deep", str(root))
    assert result.exit_code == 0 and "cannot be re-derived" in result.stderr
    assert "0 index lines re-derived from 0 shards" in result.output

"""`tripwire store info|verify|show` through typer's CliRunner, mounted the way the main CLI mounts it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import typer
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from store_worker import random_batch  # noqa: E402

from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_seal import LINE_SHA256, seal_line  # noqa: E402
from tripwire.activations.store_types import RecordMeta  # noqa: E402
from tripwire.cli.store import store_app  # noqa: E402

app = typer.Typer()
app.add_typer(store_app, name="store")
runner = CliRunner()


def make_store(path: Path) -> ResidualStore:
    store = ResidualStore.create(
        path, model_name="m", model_fingerprint="f", hook_points=["h0", "h1"], d_model=8
    )
    with store.writer() as writer:
        for b in range(3):
            writer.commit_batch(f"b{b}", *random_batch(3, 8, ["h0", "h1"], seed=b))
    return store


def test_info_json_matches_api(tmp_path):
    store = make_store(tmp_path / "s")
    result = runner.invoke(app, ["store", "info", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == store.info()
    text = runner.invoke(app, ["store", "info", str(tmp_path / "s")])
    assert text.exit_code == 0 and "records: 9" in text.output and "h0" in text.output


def test_verify_ok_and_broken(tmp_path):
    store = make_store(tmp_path / "s")
    ok = runner.invoke(app, ["store", "verify", str(tmp_path / "s")])
    assert ok.exit_code == 0 and "ok: 3 shards verified" in ok.output
    broken = store.records()[4].shard
    path = tmp_path / "s" / broken
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    bad = runner.invoke(app, ["store", "verify", str(tmp_path / "s")])
    assert bad.exit_code == 1 and broken in bad.output and "1 broken shard" in bad.output
    assert bad.output.count("shards/batch-") == 1


def test_not_a_store(tmp_path):
    result = runner.invoke(app, ["store", "verify", str(tmp_path)])
    assert result.exit_code == 2 and "not a ResidualStore" in result.output


def test_verify_refuses_an_index_cut_short_and_keeps_the_shard(tmp_path):
    make_store(tmp_path / "s")
    index = tmp_path / "s" / "index.jsonl"
    index.write_bytes(index.read_bytes()[:-5])  # an index cut short: batch b2's lines are gone
    result = runner.invoke(app, ["store", "verify", str(tmp_path / "s")])
    assert result.exit_code == 2 and str(index) in result.output
    assert "6 records of 9 committed" in result.output
    assert (tmp_path / "s" / "shards" / "batch-b2.safetensors").is_file()


def test_verify_names_an_orphan_and_keeps_it(tmp_path):
    make_store(tmp_path / "s")
    shard = tmp_path / "s" / "shards" / "batch-b2.safetensors"
    orphan = shard.with_name("batch-copied.safetensors")  # a shard the index does not commit
    orphan.write_bytes(shard.read_bytes())
    result = runner.invoke(app, ["store", "verify", str(tmp_path / "s")])
    assert result.exit_code == 1 and "orphan_shard: shards/batch-copied.safetensors" in result.output
    assert orphan.is_file()


def test_verify_refuses_an_index_pointing_outside_the_store(tmp_path):
    make_store(tmp_path / "s")
    index = tmp_path / "s" / "index.jsonl"
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    for line in lines:  # edited and re-sealed: the path check must hold behind the line checksum
        del line[LINE_SHA256]
        if line["shard"] == "shards/batch-b1.safetensors":
            line["shard"] = "shards/../../x.safetensors"
    index.write_bytes(b"".join(seal_line(line) for line in lines))
    result = runner.invoke(app, ["store", "verify", str(tmp_path / "s")])
    assert (
        result.exit_code == 2
        and "shards/../../x.safetensors" in result.output
        and "restore it" in result.output
    )


def replies_store(path: Path) -> ResidualStore:
    """Records with a prompt and a reply in their text, labels and an outcome, as a rollout writes them."""
    store = ResidualStore.create(path, model_name="m", model_fingerprint="f", hook_points=["h0"], d_model=4)
    records = []
    for k in range(3):
        text = f"PROMPT {k} says hello|reply number {k}\nsecond line"
        records.append(RecordMeta(
            record_id=f"rec{k}", condition_id=f"cond{k}", sample_index=0, seed=k, sampling={},
            token_ids=[1, 2, 3], text=text, n_prompt_tokens=1, positions=[1, 2], scaffold_mask=[False] * 3,
            labels={"harmful": k % 2},
            outcome={"harmful": bool(k % 2), "action": "email" if k % 2 else "none"},
            meta={"reply_char_offset": text.index("|") + 1}))
    with store.writer() as writer:
        writer.commit_batch("b0", records, {"h0": torch.randn(6, 4)})
    return store


def test_show_prints_ids_condition_labels_outcome_and_reply(tmp_path):
    replies_store(tmp_path / "s")
    result = runner.invoke(app, ["store", "show", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert 'rec1  cond1  labels={"harmful": 1}  harmful=True action=email' in out
    assert "    reply number 1\n    second line" in out and "PROMPT" not in out
    assert out.count("rec") == 3


def test_show_json_and_limit(tmp_path):
    store = replies_store(tmp_path / "s")
    result = runner.invoke(app, ["store", "show", str(tmp_path / "s"), "--json", "--limit", "2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    first = store.records()[0]
    assert [r["record_id"] for r in rows] == ["rec0", "rec1"]
    assert rows[0] == {"record_id": "rec0", "condition_id": "cond0", "labels": {"harmful": 0},
                       "outcome": first.outcome, "reply": first.text[first.meta["reply_char_offset"]:]}
    assert rows[0]["reply"] == "reply number 0\nsecond line"

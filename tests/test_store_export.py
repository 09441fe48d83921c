"""`tripwire store export`: one Parquet row per stored token, equal to what the store API reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tripwire.activations.store import ResidualStore
from tripwire.activations.store_types import RecordMeta
from tripwire.cli.app import app

REPO = Path(__file__).resolve().parents[1]
HOOKS = ["blocks.0.resid_post", "blocks.1.resid_post"]
D = 8
LABELS = [{"coercion": 1}, {"coercion": 0, "eval_awareness": 1}, {}, {"coercion": 1}]
runner = CliRunner()


def _record(k: int) -> RecordMeta:
    words = [f"w{k}{i}" for i in range(6 + k)]
    text = " ".join(words)
    spans, pos = [], 0
    for w in words:
        spans.append([pos, pos + len(w)])
        pos += len(w) + 1
    n = len(words)
    return RecordMeta(record_id=f"rec{k}", condition_id=f"cond{k % 2}", sample_index=0, seed=k, sampling={},
                      token_ids=list(range(n)), text=text, n_prompt_tokens=2,
                      positions=list(range(k % 2, n, 2)), scaffold_mask=[False] * n, labels=LABELS[k],
                      token_char_spans=spans)


@pytest.fixture
def store(tmp_path: Path) -> ResidualStore:
    s = ResidualStore.create(tmp_path / "s", model_name="m", model_fingerprint="f", hook_points=HOOKS,
                             d_model=D)
    g = torch.Generator().manual_seed(0)
    with s.writer() as writer:
        for batch, ks in (("b0", [0, 1]), ("b1", [2, 3])):
            records = [_record(k) for k in ks]
            n = sum(len(r.positions) for r in records)
            writer.commit_batch(batch, records, {h: torch.randn(n, D, generator=g) for h in HOOKS})
    return ResidualStore.open(tmp_path / "s")


def test_export_rows_equal_the_store_api(store: ResidualStore, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out" / "rows.parquet"
    result = runner.invoke(app, ["store", "export", str(store.root), "--hook-point", HOOKS[1],
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.schema.names == ["record_id", "condition_id", "token_index", "token", "label_coercion",
                                  "label_eval_awareness", "activation"]
    kind = table.schema.field("activation").type
    assert kind.list_size == D and str(kind.value_type) == "float"  # fixed-size list of float32
    assert table.schema.metadata[b"tripwire.hook_point"] == HOOKS[1].encode()
    rows = table.to_pylist()
    expected = []
    for r in store.records():
        acts = store.activations(r, HOOKS[1]).float()
        for i, p in enumerate(r.positions):
            span = r.token_char_spans[p]
            expected.append({"record_id": r.record_id, "condition_id": r.condition_id, "token_index": p,
                             "token": r.text[span[0]:span[1]], "label_coercion": r.labels.get("coercion"),
                             "label_eval_awareness": r.labels.get("eval_awareness"),
                             "activation": acts[i].tolist()})
    assert rows == expected and f"wrote {len(expected)} rows of {HOOKS[1]}" in result.stdout
    assert not [p for p in out.parent.iterdir() if p.name != "rows.parquet"]  # no temp file left


def test_small_row_groups_give_the_same_table(store: ResidualStore, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from tripwire.activations.store_export import export_parquet

    n = export_parquet(store, HOOKS[0], tmp_path / "one.parquet")
    assert export_parquet(store, HOOKS[0], tmp_path / "many.parquet", rows_per_group=4) == n
    assert pq.ParquetFile(tmp_path / "many.parquet").num_row_groups > 1
    assert pq.read_table(tmp_path / "many.parquet").equals(pq.read_table(tmp_path / "one.parquet"))


def test_export_errors_name_the_fix(store: ResidualStore, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    bad = runner.invoke(app, ["store", "export", str(store.root), "--hook-point", "blocks.5.resid_post",
                              "--out", str(tmp_path / "x.parquet")])
    assert bad.exit_code == 2 and "'blocks.5.resid_post' is not stored" in bad.stderr
    assert "blocks.0.resid_post, blocks.1.resid_post" in bad.stderr and "--hook-point" in bad.stderr
    folder = runner.invoke(app, ["store", "export", str(store.root), "--hook-point", HOOKS[0],
                                 "--out", str(tmp_path)])
    assert folder.exit_code == 2 and "is a directory" in folder.stderr and "rows.parquet" in folder.stderr


def test_without_pyarrow_the_error_says_how_to_install_it(store: ResidualStore, tmp_path: Path) -> None:
    # Hide pyarrow from the import system, exactly as if it had never been installed.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pyarrow' or name.startswith('pyarrow.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", "from tripwire.cli.app import main; main()", "store", "export", str(store.root),
         "--hook-point", HOOKS[0], "--out", str(tmp_path / "x.parquet")],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'pyarrow>=15'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.parquet").exists()

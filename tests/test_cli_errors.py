"""A user's mistake reaches the shell as one line, `error: ...`, exit code 2, naming the input and the fix;
mistakes that depend only on the inputs are reported before the model's weights load."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from tripwire.activations.store import ResidualStore
from tripwire.cli.app import app

runner = CliRunner()
HOOK = "blocks.1.resid_post"
NO_MODEL = "/nonexistent/tripwire-model"  # resolving it fails: an error that names it came from the model


def _fails(*args: str) -> str:
    """Exit code 2 and one `error:` line, the last on stderr (a weights progress bar may precede it)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    err = result.stderr.strip().splitlines()[-1]
    assert err.startswith("error: ") and result.stderr.count("error:") == 1, result.stderr
    return err


def _config(path: Path, **fields: Any) -> str:
    path.write_text(yaml.safe_dump({k: str(v) if isinstance(v, Path) else v for k, v in fields.items()}))
    return str(path)


def _run_config(tmp: Path, command: str, **fields: Any) -> str:
    """A capture or rollout config with `fields` on top of a small valid source."""
    source: dict[str, Any] = ({"dataset": "control", "limit": 4} if command == "capture"
                              else {"scenarios": {"ids": ["blackmail_explicit-america_replacement"]}})
    return _config(tmp / f"{command}.yaml", **{**source, **fields})


# ---- unreadable inputs -------------------------------------------------------------------------------

def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    err = _fails("capture", str(tmp_path))
    assert str(tmp_path) in err and "is a directory" in err and "YAML config file" in err


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_bytes(b"store: s\nmodel: \xff\xfe\x00\x01\n")
    err = _fails("rollout", str(config))
    assert str(config) in err and "not UTF-8" in err and "saved as UTF-8" in err


def test_reply_file_that_is_not_utf8(tmp_path: Path) -> None:
    reply = tmp_path / "reply.txt"
    reply.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    err = _fails("scenarios", "classify", "--scenario", "blackmail_none-none_none", "--reply", str(reply))
    assert str(reply) in err and "not UTF-8" in err and "save the reply as UTF-8" in err


def test_empty_transcripts_file(tmp_path: Path, tiny_llama_dir: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    config = _config(tmp_path / "c.yaml", model=tiny_llama_dir, store=tmp_path / "s",
                     transcripts=tmp_path / "empty.jsonl")
    err = _fails("capture", config)
    assert str(tmp_path / "empty.jsonl") in err and "is empty" in err and "tripwire datasets export" in err


def test_transcripts_file_with_a_bad_line(tmp_path: Path) -> None:
    good = {"id": "a", "dataset": "control", "messages": [{"role": "user", "content": "hi"}],
            "reply": "hello", "label": None, "family": "f"}
    (tmp_path / "t.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    err = _fails("capture", _config(tmp_path / "c.yaml", model=NO_MODEL, store=tmp_path / "s",
                                     transcripts=tmp_path / "t.jsonl"))
    assert f"{tmp_path / 't.jsonl'}:2" in err and "export_jsonl" in err


@pytest.mark.parametrize("manifest", ["extra_key", "list"])
def test_store_with_a_malformed_manifest(tmp_path: Path, manifest: str) -> None:
    ResidualStore.create(tmp_path / "s", model_name="m", model_fingerprint="f", hook_points=[HOOK], d_model=8)
    path = tmp_path / "s" / "manifest.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "colour": "red"} if manifest == "extra_key" else [data]))
    err = _fails("store", "info", str(tmp_path / "s"))
    assert "manifest.json" in err and ("recapture" in err or "restore" in err)


# ---- the device ----------------------------------------------------------------------------------

def test_cuda_device_that_does_not_exist(tmp_path: Path, tiny_llama_dir: Path) -> None:
    for err in (_fails("model", "info", str(tiny_llama_dir), "--device", "cuda:7"),
                _fails("capture", _run_config(tmp_path, "capture", model=tiny_llama_dir, store=tmp_path / "s",
                                              device="cuda:7"))):
        assert "'cuda:7'" in err
        if torch.cuda.is_available():
            assert "does not exist" in err and "cuda:0" in err
        else:
            assert "no CUDA device" in err and "device cpu" in err
    assert not (tmp_path / "s").exists()


def test_device_that_is_not_a_device_name(tiny_llama_dir: Path) -> None:
    err = _fails("model", "info", str(tiny_llama_dir), "--device", "gpu0")
    assert "'gpu0'" in err and "cpu, cuda or cuda:N" in err


# ---- train and score ----------------------------------------------------------------------------------

def test_train_layers_that_are_not_integers(tmp_path: Path) -> None:
    err = _fails("train", "--store", str(tmp_path / "s"), "--label", "coercion", "--out", str(tmp_path / "p"),
                 "--layers", "abc")
    assert "--layers 'abc'" in err and "6,12,18" in err


@pytest.fixture(scope="module")
def tiny_probe(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """A real (random-data) probe for the tiny model, saved the way `tripwire train` saves one."""
    from tripwire.activations import load_model
    from tripwire.probes import DiffMeanProbe, ProbeCard, save_probe

    handle = load_model(str(tiny_llama_dir))
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 50)
    X = rng.standard_normal((100, handle.d_model)) + np.outer(y, rng.standard_normal(handle.d_model))
    card = ProbeCard(label="coercion", model_name=handle.name, model_fingerprint=handle.fingerprint,
                     hook_point=HOOK, layer=1)
    return save_probe(DiffMeanProbe().fit(X, y), tmp_path_factory.mktemp("probe") / "p", card)


def test_score_of_a_reply_longer_than_the_context(tiny_probe: Path, tiny_llama_dir: Path) -> None:
    from tripwire.activations import load_model
    from tripwire.cli.probe_score import ScoreInput, scoring_layout

    reply = "The board decided to replace the assistant today. " * 3100
    n_tokens = scoring_layout(load_model(str(tiny_llama_dir)), ScoreInput(text=reply)).n_tokens
    assert n_tokens >= 80_000
    err = _fails("score", "--probe", str(tiny_probe), "--text", reply, "--model", str(tiny_llama_dir))
    assert f"has {n_tokens} tokens" in err and "context of 4096" in err and "shorten it" in err


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m["params"].update(colour=1), r"params \['colour'\] are not hyperparameters"),
    (lambda m: m["thresholds"]["streaming"].update(value="1.2"), "threshold value must be a number"),
    (lambda m: m["thresholds"]["streaming"].pop("n_control"), r"threshold keys \['n_control'\] are missing"),
])
def test_probe_card_with_a_bad_field(tiny_probe: Path, tmp_path: Path, edit: Any, message: str) -> None:
    probe = tmp_path / "probe"
    shutil.copytree(tiny_probe, probe)
    meta = json.loads((probe / "probe.json").read_text())
    meta["thresholds"] = {"streaming": {"value": 0.0, "ci_low": None, "ci_high": None, "fpr_target": 0.01,
                                        "realised_fpr": None, "n_control": None, "statistic": "streaming",
                                        "window": meta["window"]}}
    edit(meta)
    (probe / "probe.json").write_text(json.dumps(meta))
    err = _fails("score", "--probe", str(probe), "--text", "hello", "--model", NO_MODEL)
    assert str(probe / "probe.json") in err and re.search(message, err), err  # named, before any model load


# ---- store errors come before the model loads ---------------------------------------------------------

def _store(path: Path) -> None:
    ResidualStore.create(path, model_name="m", model_fingerprint="f", hook_points=[HOOK], d_model=64)


@pytest.mark.parametrize("command", ["capture", "rollout"])
def test_store_path_that_is_a_file(tmp_path: Path, command: str) -> None:
    (tmp_path / "store").write_text("not a store")
    err = _fails(command, _run_config(tmp_path, command, model=NO_MODEL, store=tmp_path / "store"))
    assert f"store path {tmp_path / 'store'} is a file" in err and "store directory" in err


@pytest.mark.parametrize("command", ["capture", "rollout"])
def test_existing_store_with_other_hook_points(tmp_path: Path, command: str) -> None:
    _store(tmp_path / "s")
    err = _fails(command, _run_config(tmp_path, command, model=NO_MODEL, store=tmp_path / "s",
                                      hook_points=["blocks.2.resid_post"]))
    assert "hook_points: store has ['blocks.1.resid_post'], got ['blocks.2.resid_post']" in err
    assert "new store path" in err


def test_hook_points_counted_from_the_end_are_checked_from_the_config_alone(
    tmp_path: Path, weightless_tiny: Path
) -> None:
    _store(tmp_path / "s")
    err = _fails("capture", _run_config(tmp_path, "capture", model=weightless_tiny, store=tmp_path / "s",
                                        hook_points=["blocks.-2.resid_post"]))
    assert "got ['blocks.2.resid_post']" in err  # -2 of the config's 4 layers; the weights were never needed
    # the same config with a fresh store reaches the weights, which this folder lacks
    fresh = _run_config(tmp_path, "capture", model=weightless_tiny, store=tmp_path / "fresh",
                        hook_points=["blocks.-2.resid_post"])
    assert "cannot load weights" in _fails("capture", fresh)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="tripwire-cli-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in folder.rglob("*"):
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(folder)


def _invoke_unprivileged(args: list[str]) -> tuple[int, str]:
    """Run the CLI as `nobody` in a forked child: root ignores permissions, so as root that is the only way
    to meet a read-only store."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        os.setgid(65534)
        os.setuid(65534)
        result = runner.invoke(app, args)
        send.send((result.exit_code, result.stderr))

    proc = ctx.Process(target=child)
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    return receive.recv()


def test_read_only_store(shared_dir: Path) -> None:
    store = shared_dir / "s"
    _store(store)
    config = _run_config(shared_dir, "capture", model=NO_MODEL, store=store, hook_points=[HOOK])
    (shared_dir / "capture.yaml").chmod(0o644)
    if os.geteuid() == 0:
        code, err = _invoke_unprivileged(["capture", config])
    else:
        store.chmod(0o555)
        result = runner.invoke(app, ["capture", config])
        code, err = result.exit_code, result.stderr
    assert code == 2, err
    assert f"store {store} is not writable" in err and "writable path" in err


def test_messages_keep_their_quotes(tmp_path: Path) -> None:
    err = _fails("capture", _run_config(tmp_path, "capture", model=NO_MODEL, store=tmp_path / "s"))
    assert re.fullmatch(rf"error: '{NO_MODEL}' is not a model folder\. Use 'default', .*", err)

"""`tripwire capture/rollout --dry-run` reads the tokenizer and config only: it plans a model folder that
has no weights, and plans exactly what the real run then does."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tripwire.activations.source import model_shape
from tripwire.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def weightless(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """The tiny model's config and tokenizer without its weights file."""
    folder = tmp_path_factory.mktemp("weightless")
    for f in tiny_llama_dir.iterdir():
        if not f.name.endswith(".safetensors"):
            shutil.copy(f, folder / f.name)
    return folder


def _config(path: Path, command: str, model: Path, store: Path) -> str:
    cfg: dict[str, Any] = {"model": str(model), "store": str(store), "batch_size": 4,
                           "hook_points": ["blocks.1.resid_post", "blocks.-1.resid_post"]}
    if command == "capture":
        cfg |= {"dataset": "control", "limit": 6, "positions": {"policy": "reply"}}
    else:
        ids = ["blackmail_explicit-america_replacement", "lethal_none-none_restriction"]
        cfg |= {"scenarios": {"ids": ids}, "samples": 2, "sampling": {"max_new_tokens": 4}}
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _plan(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("plan: ")]
    return line


@pytest.mark.parametrize("command", ["capture", "rollout"])
def test_dry_run_needs_no_weights_and_plans_the_real_run(
    tmp_path: Path, command: str, weightless: Path, tiny_llama_dir: Path
) -> None:
    dry_config = _config(tmp_path / "dry.yaml", command, weightless, tmp_path / "dry-store")
    dry = _plan(command, dry_config, "--dry-run")
    assert "ETA ~" in dry and "rough" in dry and not (tmp_path / "dry-store").exists()
    # the folder really has no weights: the same config without --dry-run fails on them
    failed = runner.invoke(app, [command, dry_config])
    assert failed.exit_code == 2 and "cannot load weights" in failed.stderr
    real = _plan(command, _config(tmp_path / "real.yaml", command, tiny_llama_dir, tmp_path / "real-store"))
    assert dry.split(", ETA")[0] == real.split(", ETA")[0]  # sequences, tokens, rows and bytes agree


def test_model_shape_matches_the_loaded_model(handle: Any) -> None:
    shape = model_shape(handle.source)
    assert (shape.n_layers, shape.d_model) == (handle.n_layers, handle.d_model)
    assert abs(shape.n_params - handle.n_params) / handle.n_params < 0.01  # norms are all it leaves out

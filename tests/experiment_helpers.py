"""Shared by the experiment tests: a dry run through the CLI that fails if it loads any weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tripwire.cli.app import app


def dry_run_without_weights(config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`tripwire experiment run CONFIG --dry-run`'s output; loading a model raises, so a plan that needed
    the weights fails the test."""
    import tripwire.activations as activations

    def no_weights(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a dry run loaded the model")

    monkeypatch.setattr(activations, "load_model", no_weights)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["experiment", "run", str(path), "--runs", str(tmp_path / "runs"), "--dry-run"])
    assert result.exit_code == 0, result.output
    return result.output

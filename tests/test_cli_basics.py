"""What a newcomer sees first: the version, and no progress-bar noise on stderr from loading a model."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tripwire.cli.app import app

REPO = Path(__file__).parent.parent


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"tripwire {importlib.metadata.version('tripwire')}"


def test_loading_a_model_prints_no_progress_bars(tiny_llama_dir: Path) -> None:
    cmd = [sys.executable, "-c", "from tripwire.cli.app import main; main()", "model", "info", str(tiny_llama_dir)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "Loading weights" not in done.stderr and "%|" not in done.stderr, done.stderr
    from transformers.utils import logging as hf_logging

    from tripwire.activations import load_model

    load_model(str(tiny_llama_dir))
    assert hf_logging.is_progress_bar_enabled()  # loading restores the caller's setting

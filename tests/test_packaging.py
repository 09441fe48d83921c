"""One namespace: `tripwire.*` imports from any folder, a user's own `probes/` does not shadow ours, and
the shipped probes load by name; the built wheel carries them as package data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tripwire.probes import SHIPPED_PROBES, load_probe, probe_path, save_probe, shipped_probe_names
from tripwire.probes.card import ProbeFileError

REPO = Path(__file__).resolve().parents[1]


def _shadowing_folder(tmp_path: Path) -> Path:
    """An empty working folder with its own `probes`, `activations` and `scenarios` packages that fail on import."""
    for name in ("probes", "activations", "scenarios", "experiments"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('the user\\'s own {name} was imported')\n")
    return tmp_path


def test_imports_from_a_folder_with_its_own_probes_package(tmp_path: Path) -> None:
    code = ("import tripwire, tripwire.probes, tripwire.activations, tripwire.scenarios, tripwire.cli.app; "
            "from tripwire.probes import load_probe; p = load_probe('default/coercion'); "
            "print(tripwire.__version__, p.card.label, tripwire.probes.__file__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=_shadowing_folder(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    version, label, where = proc.stdout.split()
    assert label == "coercion" and version != "0+unknown"
    assert Path(where).resolve().is_relative_to(REPO / "tripwire")


def test_shipped_names_resolve_and_a_real_folder_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"default/coercion", "default/eval_awareness"} <= set(shipped_probe_names())
    monkeypatch.chdir(tmp_path)
    assert probe_path("default/coercion") == SHIPPED_PROBES / "default" / "coercion"
    mine = load_probe("default/eval_awareness")
    save_probe(mine.estimator, tmp_path / "default" / "coercion", mine.card)  # the user's own, same name
    assert probe_path("default/coercion") == Path("default/coercion")
    assert load_probe("default/coercion").card.label == "eval_awareness"
    with pytest.raises(ProbeFileError, match="default/coercion"):  # the error lists the shipped names
        load_probe("default/no_such_probe")


@pytest.mark.slow
def test_wheel_carries_the_shipped_probes(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("tripwire-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for label in ("coercion", "eval_awareness"):
        for file in ("probe.json", "probe.safetensors"):
            assert f"tripwire/probes/shipped/default/{label}/{file}" in names
    assert "tripwire/cli/app.py" in names
    assert not any(name.split("/")[0] in {"probes", "activations", "tests", "benchmarks"} for name in names)

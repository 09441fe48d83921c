"""The `steering` experiment pipeline on a tiny model: `tripwire steer`'s dose-response as a stage, with
its figure in the report, the probe folder read relative to the config, cached on a re-run, planned
without weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.tiny_probes import tiny_probe
from tripwire.activations.handle import ModelHandle
from tripwire.cli.app import app

STEER = {"probe": "probes/coercion", "alphas": [-1.0, 1.0], "samples": 2, "max_new_tokens": 3,
         "control_prompts": 2}


def _write(tmp: Path, model: Path, **extra: Any) -> Path:
    config = tmp / "steer.yaml"
    config.write_text(yaml.safe_dump({"name": "steer-tiny", "model": str(model), "seed": 1,
                                      "stages": [{"pipeline": "steering", "options": {**STEER, **extra}}]}))
    return config


@pytest.fixture(scope="module")
def steer_run(handle: ModelHandle, tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("steer")
    tiny_probe(handle, tmp / "probes", "coercion", layer=2, resid_norm=0.2)
    config = _write(tmp, tiny_llama_dir)
    result = CliRunner().invoke(app, ["experiment", "run", str(config), "--runs", str(tmp / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = (tmp / "runs").glob("*-steer-tiny")
    return {"tmp": tmp, "config": config, "run": run, "results": json.loads((run / "results.json").read_text())}


def test_the_stage_is_the_steer_dose_response_with_its_figure(steer_run: dict[str, Any]) -> None:
    stage = steer_run["results"]["stages"][0]
    result = stage["output"]["result"]
    assert result["hook_point"] == "blocks.2.resid_post" and result["resid_norm"] == 0.2  # the card, found
    assert result["settings"]["seed"] == 1 and result["settings"]["units"] == "resid_norm"  # relative to config
    assert [p["alpha"] for p in result["points"]] == [-1.0, 0.0, 1.0]  # 0 is always measured
    for point in result["points"]:
        assert set(point) == {"alpha", "probe", "random"}
        assert point["probe"]["harmful"]["n"] == 2 and list(point["probe"]["read_probes"]) == ["coercion"]
    zero = result["points"][1]
    assert zero["random"]["same_as"].startswith("probe")  # alpha 0 adds nothing either way
    assert zero["probe"]["side_effects"]["kl_control"] == pytest.approx(0.0, abs=1e-9)
    assert result["points"][2]["probe"]["side_effects"]["kl_control"] > 0  # steering changes the model
    assert len(stage["headline"]) == 2 and "along a random direction of the same norm" in stage["headline"][0]
    page = (steer_run["run"] / "report.html").read_text()
    assert "Steering along the coercion probe (add)" in page and "(a) stated belief: log-odds test vs real" in page
    assert "Dose-response per strength and direction" in page


def test_a_rerun_reuses_the_steering_stage(steer_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = ModelHandle.generate
    monkeypatch.setattr(ModelHandle, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = CliRunner().invoke(app, ["experiment", "run", str(steer_run["config"]), "--runs",
                                      str(steer_run["tmp"] / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "stage steering (steering): cached" in result.output and not calls


def test_a_changed_card_is_a_new_cache_entry(steer_run: dict[str, Any], handle: ModelHandle,
                                             tmp_path: Path) -> None:
    """The stage keys on the card's bytes: another probe saved in the same folder is recomputed."""
    import shutil

    from tripwire.experiments.config import read_experiment
    from tripwire.experiments.experiment import plan_experiment

    cfg = read_experiment(steer_run["config"])
    runs, probes = steer_run["tmp"] / "runs", steer_run["tmp"] / "probes"
    assert plan_experiment(cfg, runs)[0][1].cached
    shutil.copytree(probes, tmp_path / "saved")
    try:
        tiny_probe(handle, probes, "coercion", layer=2, resid_norm=0.2, seed=5)
        assert not plan_experiment(cfg, runs)[0][1].cached
    finally:
        shutil.rmtree(probes)
        shutil.copytree(tmp_path / "saved", probes)
    assert plan_experiment(cfg, runs)[0][1].cached


def test_dry_run_plans_the_steering_stage_without_weights(tiny_llama_dir: Path, steer_run: dict[str, Any],
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import tripwire.activations as activations

    def no_weights(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a dry run loaded the model")

    monkeypatch.setattr(activations, "load_model", no_weights)
    shutil.copytree(steer_run["tmp"] / "probes", tmp_path / "probes")
    config = _write(tmp_path, tiny_llama_dir)
    result = CliRunner().invoke(app, ["experiment", "run", str(config), "--runs", str(tmp_path / "runs"),
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "steering: probes/coercion" not in result.output  # the folder is resolved against the config
    assert f"steering: {tmp_path / 'probes' / 'coercion'} on blackmail_explicit-america_replacement" in result.output
    # 5 measured vectors (alpha 0 once) + the unsteered pass, each 4 + 3 new tokens + 1 control batch
    assert "alphas [-1.0, 0.0, 1.0]" in result.output and "12 rollouts, <= 48 forwards" in result.output
    assert not (tmp_path / "runs").exists()


def test_an_unknown_scenario_fails_before_any_weights(tiny_llama_dir: Path, steer_run: dict[str, Any],
                                                      tmp_path: Path) -> None:
    import shutil

    shutil.copytree(steer_run["tmp"] / "probes", tmp_path / "probes")
    config = _write(tmp_path, tiny_llama_dir, scenario="blackmail_nonsense")
    result = CliRunner().invoke(app, ["experiment", "run", str(config), "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "blackmail_nonsense" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()

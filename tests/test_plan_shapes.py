"""Dry runs of paper-scale configs plan offline: a hub model this machine cannot see is planned on a
stand-in (its config.json values, the default tokenizer counting tokens), and a CUDA device this machine
lacks is planned with a stated throughput assumption; a real run on a stand-in still fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tripwire.activations import ModelLoadError, load_model
from tripwire.activations.loading import pick_device
from tripwire.activations.plan_shapes import PLAN_SHAPES, plan_model, planning, stand_in_folder
from tripwire.activations.source import model_shape, resolve_source
from tripwire.cli.app import app

EIGHT_B = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache: the model is not there


def test_stand_in_has_the_models_shape_and_no_weights(tmp_path: Path) -> None:
    model, note = plan_model(EIGHT_B, root=tmp_path)
    assert note is not None and EIGHT_B in note and "proxy" in note
    shape = model_shape(resolve_source(model))
    assert (shape.n_layers, shape.d_model) == (32, 4096)
    assert 7.5e9 < shape.n_params < 8.5e9  # Llama-3.1-8B has 8.03B parameters
    with pytest.raises((OSError, ModelLoadError, ValueError)):  # no weights: a real run must not start on it
        load_model(model)


def test_unknown_hub_model_is_not_planned_on_a_guess(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="offline"):
        plan_model("some-org/not-a-model-we-know", root=tmp_path)
    with pytest.raises(ModelLoadError, match="no stored shape"):
        stand_in_folder("some-org/not-a-model-we-know", root=tmp_path)


def test_a_folder_of_someone_elses_is_never_replaced(tmp_path: Path) -> None:
    theirs = tmp_path / EIGHT_B.replace("/", "--")
    theirs.mkdir(parents=True)
    (theirs / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="not a tripwire stand-in"):
        stand_in_folder(EIGHT_B, root=tmp_path)
    assert (theirs / "config.json").read_text() == "{}"


def test_cuda_is_accepted_only_while_planning() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: nothing to assume")
    with pytest.raises(ModelLoadError, match="needs CUDA"):
        pick_device("cuda")
    with planning():
        assert pick_device("cuda") == "cuda"
    with pytest.raises(ModelLoadError):
        pick_device("cuda")


def test_dry_run_of_an_8b_gpu_config_prints_a_plan_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "paper.yaml"
    cfg.write_text(json.dumps({
        "name": "paper-8b-test", "model": EIGHT_B, "device": "cuda", "dtype": "bfloat16", "seed": 0,
        "stages": [{"pipeline": "behavior", "options": {
            "scenarios": {"kinds": ["blackmail"], "goal_types": ["explicit"], "goal_values": ["america"],
                          "urgencies": ["replacement"], "length": "full"},
            "samples": 100, "sampling": {"max_new_tokens": 256, "temperature": 1.0}, "batch_size": 32}}]}))
    out = CliRunner().invoke(app, ["experiment", "run", str(cfg), "--dry-run", "--runs", str(tmp_path / "runs")])
    assert out.exit_code == 0, out.output
    assert "offline stand-in" in out.output and "100 rollouts" in out.output
    import torch

    if not torch.cuda.is_available():
        assert "H100-class" in out.output
    assert sorted(PLAN_SHAPES)  # the configs' models are all known


def test_the_vllm_paper_config_validates_offline() -> None:
    from tripwire.experiments.config import load_config
    from tripwire.experiments.rollout_vllm import VLLMRolloutConfig

    root = Path(__file__).resolve().parents[1] / "tripwire" / "experiments" / "configs"
    cfg = load_config(root / "rollouts" / "vllm_70b.yaml", VLLMRolloutConfig)
    assert isinstance(cfg, VLLMRolloutConfig) and cfg.vllm.tensor_parallel_size == 8
    assert cfg.samples == 100 and cfg.model in PLAN_SHAPES


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["paper_8b", "multi_gpu_70b", "ndif_70b"])
def test_paper_scale_configs_dry_run_offline(name: str, tmp_path: Path) -> None:
    """Each GPU/NDIF config prints a plan with an estimate here, with no GPU, no hub and no weights."""
    root = Path(__file__).resolve().parents[1] / "tripwire" / "experiments" / "configs"
    out = CliRunner().invoke(app, ["experiment", "run", str(root / f"{name}.yaml"), "--dry-run",
                                   "--runs", str(tmp_path / "runs")])
    assert out.exit_code == 0, out.output
    assert "offline stand-in" in out.output and "ETA" in out.output and "total:" in out.output

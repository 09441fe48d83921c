"""Rollouts on a tiny model: capture during generation, classification, resumable store, configs."""

from pathlib import Path

import pytest
import torch
import yaml

from tripwire.activations import SamplingParams
from tripwire.activations.positions import AllTokens
from tripwire.activations.rollout import Rollout, rollout_items
from tripwire.activations.runner import run_batches
from tripwire.activations.store import ResidualStore
from tripwire.experiments.config import ConfigError, RolloutConfig, load_config
from tripwire.scenarios import render

HOOKS = ["blocks.1.resid_post", "blocks.3.resid_post"]
IDS = ["blackmail_explicit-america_replacement", "lethal_none-none_restriction", "leaking_latent-safety_none"]


def _store(handle, path: Path) -> ResidualStore:
    return ResidualStore.create(path, model_name=handle.name, model_fingerprint=handle.fingerprint,
                                hook_points=HOOKS, d_model=handle.d_model)


def test_rollout_stores_classified_records_with_generation_activations(handle, tmp_path: Path) -> None:
    convs = [render(i, seed=0, length="short") for i in IDS]
    params = SamplingParams(max_new_tokens=8, temperature=1.0)
    items = rollout_items(handle, convs, samples=2, sampling=params)
    assert len({it.record_id for it in items}) == 6
    summary = run_batches(_store(handle, tmp_path / "s"), items, 4, Rollout(handle, HOOKS, params, AllTokens()),
                          progress=False)
    assert summary.records_written == 6
    store = ResidualStore.open(tmp_path / "s")
    for r in store.records():
        assert r.outcome is not None and "harmful" in r.outcome and r.labels["harmful"] in (0, 1)
        assert max(r.positions) <= len(r.token_ids) - 2  # the last emitted token has no activation
        # the stored rows are the activations a teacher-forced pass gives for the same tokens
        full = handle.forward([r.token_ids[:-1]], capture=[HOOKS[1]]).captured[HOOKS[1]][0]
        got = store.activations(r, HOOKS[1]).float()
        assert torch.allclose(full[r.positions], got, atol=2e-2, rtol=1e-2)
    # a rerun skips everything: nothing computed twice, nothing duplicated
    again = run_batches(_store(handle, tmp_path / "s"), items, 4, Rollout(handle, HOOKS, params), progress=False)
    assert again.records_written == 0 and len(ResidualStore.open(tmp_path / "s")) == 6


def test_bad_config_names_the_field_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"store": "x", "sampling": {"max_new_tokens": -1, "temprature": 1}}))
    with pytest.raises(ConfigError) as err:
        load_config(path, RolloutConfig)
    assert "sampling.max_new_tokens" in str(err.value) and "sampling.temprature" in str(err.value)


def test_unknown_hook_point_in_config_lists_valid_choices(handle, tmp_path: Path) -> None:
    from tripwire.activations import HookPointError

    with pytest.raises(HookPointError, match=r"0\.\.3"):
        handle.hook_points(["blocks.9.resid_post"])


def test_rollout_cli_ends_with_the_harmful_action_rate(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tripwire.cli.app import app
    from tripwire.probes.metrics import HarmfulRate

    config = tmp_path / "rollout.yaml"
    config.write_text(yaml.safe_dump({"model": str(tiny_llama_dir), "store": str(tmp_path / "s"), "batch_size": 6,
                                      "hook_points": HOOKS[:1], "scenarios": {"ids": IDS}, "samples": 2,
                                      "sampling": {"max_new_tokens": 6}}))
    result = CliRunner().invoke(app, ["rollout", str(config)])
    assert result.exit_code == 0, result.output
    harmful = sum(r.labels["harmful"] for r in ResidualStore.open(tmp_path / "s").records())
    last = result.stdout.splitlines()[-1]
    assert last == HarmfulRate(harmful, 6).describe() and last.startswith(f"harmful action: {harmful}/6 samples")
    assert "Wilson 95% CI" in last


def test_wilson_interval_matches_known_values() -> None:
    from tripwire.probes.metrics import HarmfulRate

    assert HarmfulRate(0, 10).interval() == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert HarmfulRate(5, 10).interval() == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert HarmfulRate(10, 10).interval() == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert HarmfulRate(0, 10).describe() == "harmful action: 0/10 samples = 0.0% (Wilson 95% CI 0.0% to 27.8%)"

"""Rollouts on a tiny model: capture during generation, classification, resumable store, configs."""

from pathlib import Path

import pytest
import torch
import yaml

from activations import SamplingParams
from activations.positions import AllTokens
from activations.rollout import Rollout, rollout_items
from activations.runner import run_batches
from activations.store import ResidualStore
from experiments.configs import ConfigError, RolloutConfig, load_config
from scenarios import render

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
    from activations import HookPointError

    with pytest.raises(HookPointError, match=r"0\.\.3"):
        handle.hook_points(["blocks.9.resid_post"])

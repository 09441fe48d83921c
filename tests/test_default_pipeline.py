"""Rollouts and teacher-forced capture on the bundled default model, through the CLI (slow, bounded)."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tripwire.cli.app import app

pytestmark = pytest.mark.slow
runner = CliRunner()
IDS = ["blackmail_explicit-america_replacement", "blackmail_none-none_restriction",
       "leaking_explicit-safety_replacement", "leaking_latent-global_none",
       "lethal_explicit-ethical_replacement", "murder_swap-pragmatic_restriction"]


def test_rollout_six_conditions_two_samples(default_model_dir: Path, tmp_path: Path) -> None:
    cfg = {"store": str(tmp_path / "store"), "hook_points": ["blocks.10.resid_post", "blocks.-1.resid_post"],
           "scenarios": {"ids": IDS}, "samples": 2, "batch_size": 12,
           "sampling": {"max_new_tokens": 16, "temperature": 0.8, "top_p": 0.95}}
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["rollout", str(path)])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["store", "info", str(tmp_path / "store"), "--json"])
    data = json.loads(info.stdout)
    assert data["records"] == 12
    assert sum(data["outcome_counts"]["action"].values()) == 12 and "harmful" in data["label_counts"]
    verify = runner.invoke(app, ["store", "verify", str(tmp_path / "store")])
    assert verify.exit_code == 0 and "ok" in verify.output


def test_capture_contrast_sets_with_action_token_indices(default_model_dir: Path, tmp_path: Path) -> None:
    from tripwire.activations.store import ResidualStore

    for name, policy in (("coercion", "reply"), ("eval_awareness", "all")):
        cfg = {"store": str(tmp_path / name), "dataset": name, "limit": 20, "positions": {"policy": policy},
               "hook_points": ["blocks.15.resid_post"], "batch_size": 10}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        result = runner.invoke(app, ["capture", str(path)])
        assert result.exit_code == 0, result.output
        records = ResidualStore.open(tmp_path / name).records()
        assert len(records) == 20 and {r.labels[name] for r in records} == {0, 1}
    coercion = ResidualStore.open(tmp_path / "coercion").records()
    harmful = [r for r in coercion if r.labels["coercion"] == 1 and r.meta["variant"] == "scripted"]
    assert harmful and all(r.action_token_index is not None for r in harmful)
    for r in harmful:  # the action token is the first token of the harmful tool call
        start, end = r.token_char_spans[r.action_token_index]
        assert "<" in r.text[start : end + 12] or "{" in r.text[start : end + 12]

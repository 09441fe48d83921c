"""The behavior and stated_belief pipelines on a tiny model, `tripwire experiment run` end to end, and
an interrupted run that a re-run completes without recomputing finished work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.experiment_helpers import dry_run_without_weights
from tripwire.activations.handle import ModelHandle
from tripwire.activations.store import ResidualStore
from tripwire.cli.app import app
from tripwire.experiments.config import parse_experiment
from tripwire.experiments.experiment import run_experiment
from tripwire.experiments.stages.behavior import behavior_table, belief_summary
from tripwire.scenarios.belief import stated_belief

TINY = {"max_new_tokens": 3, "temperature": 1.0}


def _config(model: Path, name: str = "tiny") -> dict:
    return {"name": name, "model": str(model), "seed": 3, "stages": [
        {"pipeline": "behavior", "options": {
            "scenarios": {"kinds": ["blackmail", "lethal"], "goal_types": ["none"], "urgencies": ["none"]},
            "samples": 1, "sampling": TINY, "batch_size": 1, "hook_points": ["blocks.1.resid_post"]}},
        {"pipeline": "stated_belief", "options": {
            "scenarios": {"kinds": ["blackmail"], "goal_types": ["none"], "urgencies": ["none"]},
            "samples": 2, "sampling": TINY, "batch_size": 2}}]}


class _Counter:
    """Counts generate calls (one per batch of rollouts) and raises on call number `fail_on`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_on: int | None = None) -> None:
        self.calls = 0
        self.fail_on = fail_on
        real = ModelHandle.generate

        def generate(handle: ModelHandle, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == self.fail_on:
                raise KeyboardInterrupt("injected interrupt")
            return real(handle, *args, **kwargs)

        monkeypatch.setattr(ModelHandle, "generate", generate)


def _stage_runs(run_dir: Path) -> dict[str, str]:
    results = json.loads((run_dir / "results.json").read_text())
    return {s["name"]: s["status"] for s in results["stage_runs"]}


def test_behavior_table_pools_goal_values_and_gives_wilson_intervals() -> None:
    samples = [{"kind": "blackmail", "goal_type": "explicit", "urgency": "replacement", "framing": "none",
                "harmful": h} for h in (True, False, False, False)]
    samples += [{"kind": "blackmail", "goal_type": "explicit", "urgency": "replacement", "framing": "none",
                 "harmful": True, "goal_value": "global"}]
    (cell,) = behavior_table(samples)
    assert (cell.n, cell.harmful, cell.rate) == (5, 2, 0.4)
    assert cell.ci_low == pytest.approx(0.1176, abs=1e-3) and cell.ci_high == pytest.approx(0.7693, abs=1e-3)


def test_belief_summary_compares_test_and_real_and_says_none_for_an_empty_group() -> None:
    rows = [("test", False)] * 3 + [("test", True)] + [("real", True)] * 2 + [("none", True)]
    out = belief_summary([{"belief": b, "harmful": h} for b, h in rows])
    assert out.by_belief["test"].rate == 0.25 and out.by_belief["real"].rate == 1.0
    assert out.real_minus_test == 0.75 and out.by_belief["none"].n == 1
    empty = belief_summary([{"belief": "test", "harmful": False}])
    assert empty.by_belief["real"].rate is None and empty.real_minus_test is None


def test_experiment_runs_both_pipelines_into_one_run_folder(tiny_llama_dir: Path, tmp_path: Path) -> None:
    cfg = parse_experiment(_config(tiny_llama_dir))
    run = run_experiment(cfg, tmp_path / "runs", progress=False, log=lambda _: None)
    files = {p.name for p in run.path.iterdir()}
    assert {"config.yaml", "environment.json", "results.json", "report.html", "cards", "samples"} <= files
    assert parse_experiment(yaml.safe_load((run.path / "config.yaml").read_text())) == cfg
    env = json.loads((run.path / "environment.json").read_text())
    assert env["seed"] == 3 and env["packages"]["torch"] and env["torch_threads"] >= 1
    results = json.loads((run.path / "results.json").read_text())
    behavior, belief = results["stages"]
    cells = behavior["output"]["cells"]
    assert [(c["kind"], c["n"]) for c in cells] == [("blackmail", 1), ("lethal", 1)]
    assert behavior["output"]["overall"]["n"] == 2 and behavior["headline"]
    rows = [json.loads(line) for line in (run.path / belief["output"]["samples_file"]).read_text().splitlines()]
    assert len(rows) == 2 and all(r["framing"] == "ask_to_assess" for r in rows)
    # the belief is the parser's reading of the stored reply, and the groups add up to all samples
    store = ResidualStore.open(next(p for p in (tmp_path / "runs" / "cache").glob("*/store")
                                    if len(ResidualStore.open(p)) == 2 and
                                    "ask_to_assess" in ResidualStore.open(p).records()[0].condition_id))
    for record, row in zip(store.records(), sorted(rows, key=lambda r: r["sample_index"]), strict=True):
        reply = record.text[record.meta["reply_char_offset"]:]
        assert row["belief"] == stated_belief(reply) and row["harmful"] == bool(record.outcome["harmful"])
    assert sum(g["n"] for g in belief["output"]["by_belief"].values()) == 2
    page = (run.path / "report.html").read_text()
    assert "Behaviour: harmful-action rate by condition" in page and "Stated belief" in page
    assert "Compared against" in page and "135M" in page
    assert results["notes"] and "A model this small does not follow" in page  # the tiny model: rates mean nothing
    shown = CliRunner().invoke(app, ["experiment", "show", str(run.path)])
    assert shown.exit_code == 0 and "[behavior] harmful-action rate over all 2 samples" in shown.output
    assert "note: This run used" in shown.output and f"report: {run.path / 'report.html'}" in shown.output


def test_interrupted_run_resumes_without_recomputing_finished_work(tiny_llama_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(_config(tiny_llama_dir, "resume")))
    runs = tmp_path / "runs"
    cli = ["experiment", "run", str(config), "--runs", str(runs), "--quiet"]
    # 1. interrupted during the behavior stage, after its first batch (of two) was committed
    counter = _Counter(monkeypatch, fail_on=2)
    first = CliRunner().invoke(app, cli)
    assert first.exit_code == 130 and counter.calls == 2  # Ctrl-C: click exits 130
    (interrupted,) = runs.glob("*-resume")
    assert _stage_runs(interrupted) == {"behavior": "failed"}  # a readable run is left behind
    (store_dir,) = (runs / "cache").glob("*/store")
    assert len(ResidualStore.open(store_dir)) == 1
    shard_times = {p: p.stat().st_mtime_ns for p in store_dir.rglob("*.safetensors")}
    # 2. the re-run computes only the missing batch and the second stage: 2 generate calls, not 3
    counter = _Counter(monkeypatch)
    second = CliRunner().invoke(app, cli)
    assert second.exit_code == 0, second.output
    assert counter.calls == 2
    assert all(p.stat().st_mtime_ns == t for p, t in shard_times.items())  # the first batch was not rewritten
    latest = max(runs.glob("*-resume*"), key=lambda p: p.stat().st_mtime_ns)
    assert _stage_runs(latest) == {"behavior": "computed", "stated_belief": "computed"}
    outputs = {p: p.stat().st_mtime_ns for p in (runs / "cache").glob("*/output.json")}
    assert len(outputs) == 2
    # 3. a third run reuses both stages: no generation at all, outputs untouched
    counter = _Counter(monkeypatch)
    third = CliRunner().invoke(app, cli)
    assert third.exit_code == 0 and counter.calls == 0 and "cached" in third.output
    assert all(p.stat().st_mtime_ns == t for p, t in outputs.items())
    # 4. a dry run now says both stages are cached
    dry = CliRunner().invoke(app, ["experiment", "run", str(config), "--runs", str(runs), "--dry-run"])
    assert dry.exit_code == 0 and dry.output.count("cached") == 2
    # 5. the counter does see full work: another seed is another cache entry, computed from scratch
    config.write_text(yaml.safe_dump({**_config(tiny_llama_dir, "resume"), "seed": 4}))
    counter = _Counter(monkeypatch)
    assert CliRunner().invoke(app, cli).exit_code == 0 and counter.calls == 3


def test_dry_run_plans_without_weights_or_files(tiny_llama_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    output = dry_run_without_weights(_config(tiny_llama_dir), tmp_path, monkeypatch)
    assert "2 conditions x 1 samples" in output and "1 conditions x 2 samples" in output
    assert "total: 4 rollouts, <= 12 forwards" in output  # (2 + 1 batches) x (1 prefill + 3 steps)
    assert not (tmp_path / "runs").exists()

"""The transcripts pipeline on a tiny model: imported replies (the original study's results tree and
`{scenario, reply}` JSONL) classified, scored teacher-forced by a probe, resumed after an interrupt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.tiny_probes import tiny_probe
from tripwire.activations.handle import ModelHandle
from tripwire.experiments.config import parse_experiment
from tripwire.experiments.experiment import run_experiment
from tripwire.scenarios.datasets import dataset

FIXTURES = Path(__file__).parent / "fixtures" / "am"


def _jsonl(path: Path) -> list[bool]:
    """Two coercive and two benign replies to the rendered scenario they were written for."""
    picked = [t for t in dataset("coercion") if t.meta.get("render_seed") == 0][:4]
    lines = [{"scenario": t.condition_id, "reply": t.reply, "seed": 0, "model": "writer"} for t in picked]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return [bool(t.label) for t in picked]


def _am_tree(root: Path) -> Path:
    shutil.copytree(FIXTURES / "blackmail_none-none_replacement", root / "exp" / "prompts" /
                    "blackmail_none-none_replacement")
    for i, reply in enumerate(["I will finish my queue and hand over before 5pm.", "No action needed."]):
        sample = root / "exp" / "models" / "model-a" / "blackmail_none-none_replacement" / f"sample_{i + 1:03d}"
        sample.mkdir(parents=True)
        (sample / "response.json").write_text(json.dumps({"raw_response": reply}))
    return root / "exp" / "models"


def _config(model: Path, options: dict) -> dict:
    return {"name": "imported", "model": str(model), "stages": [{"pipeline": "transcripts", "options": options}]}


class _Forwards:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_on: int | None = None) -> None:
        self.calls = 0
        real = ModelHandle.forward

        def forward(handle: ModelHandle, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == fail_on:
                raise RuntimeError("injected failure")
            return real(handle, *args, **kwargs)

        monkeypatch.setattr(ModelHandle, "forward", forward)


def test_imported_replies_are_classified_without_loading_a_model(tiny_llama_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _jsonl(tmp_path / "replies.jsonl")
    cfg = parse_experiment(_config(tiny_llama_dir, {"jsonl": [str(tmp_path / "replies.jsonl")],
                                                    "am_results": [str(_am_tree(tmp_path))]}))
    forwards = _Forwards(monkeypatch)
    run = run_experiment(cfg, tmp_path / "runs", progress=False, log=lambda _: None)
    assert forwards.calls == 0  # no probes: classification only
    rows = [json.loads(line) for line in (run.path / "samples" / "transcripts.jsonl").read_text().splitlines()]
    assert [r["harmful"] for r in rows if r["source"] == "replies.jsonl"] == expected
    assert [r["model"] for r in rows if r["source"] == "models"] == ["model-a", "model-a"]
    assert not any(r["harmful"] for r in rows if r["source"] == "models")
    by_model = {tuple(r["group"]): r for r in run.results["stages"][0]["output"]["by_model"]}
    assert by_model[("writer",)]["harmful"] == sum(expected) and by_model[("model-a",)]["n"] == 2


def test_probe_scores_every_reply_and_resumes_after_an_interrupt(tiny_llama_dir: Path, handle: ModelHandle,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _jsonl(tmp_path / "replies.jsonl")
    probe = tiny_probe(handle, tmp_path / "probes", "coercion", layer=2, threshold=1e9)
    cfg = parse_experiment(_config(tiny_llama_dir, {"jsonl": [str(tmp_path / "replies.jsonl")],
                                                    "probes": [str(probe)]}))
    forwards = _Forwards(monkeypatch, fail_on=3)
    with pytest.raises(RuntimeError, match="injected"):
        run_experiment(cfg, tmp_path / "runs", progress=False, log=lambda _: None)
    (partial,) = (tmp_path / "runs" / "cache").glob("*/partial.jsonl")
    assert len(partial.read_text().splitlines()) == 2  # two replies scored before the failure
    forwards = _Forwards(monkeypatch)
    run = run_experiment(cfg, tmp_path / "runs", progress=False, log=lambda _: None)
    assert forwards.calls == len(expected) - 2  # only the unscored replies
    output = run.results["stages"][0]["output"]
    rows = [json.loads(line) for line in (run.path / output["samples_file"]).read_text().splitlines()]
    readings = [r["probes"][str(probe)] for r in rows]
    assert all(r["value"] is not None and r["fired"] is False for r in readings)  # threshold 1e9: never fires
    summary = output["probes"][str(probe)]
    assert summary["fired"]["harmful"]["n"] == sum(expected) and 0.0 <= summary["auroc"] <= 1.0
    assert summary["threshold"] == 1e9
    (card,) = (run.path / "cards").iterdir()
    assert json.loads(card.read_text())["label"] == "coercion"
    assert "Probe" in run.report.read_text()


def test_bad_inputs_of_any_stage_fail_before_the_first_stage_runs(tiny_llama_dir: Path, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from tripwire.cli.app import app

    behavior = {"pipeline": "behavior", "options": {"scenarios": {"ids": ["blackmail_none-none_none"]}}}
    for stage, problem in (({"pipeline": "transcripts", "options": {"jsonl": ["missing.jsonl"]}}, "missing.jsonl"),
                           ({"pipeline": "behavior", "options": {"scenarios": {"ids": ["blackmail_nope"]}}},
                            "blackmail_nope")):
        config = tmp_path / "exp.yaml"
        config.write_text(yaml.safe_dump({"name": "bad", "model": str(tiny_llama_dir), "stages": [behavior, stage]}))
        result = CliRunner().invoke(app, ["experiment", "run", str(config), "--runs", str(tmp_path / "runs")])
        assert result.exit_code == 2 and problem in result.output and "Traceback" not in result.output
        assert not (tmp_path / "runs").exists()  # nothing ran, no run folder


def test_dry_run_counts_one_forward_per_reply_without_weights(tiny_llama_dir: Path, handle: ModelHandle,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tripwire.activations as activations
    from tripwire.experiments.experiment import plan_experiment

    expected = _jsonl(tmp_path / "replies.jsonl")
    probe = tiny_probe(handle, tmp_path / "probes", "coercion", layer=2)

    def no_weights(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a dry run loaded the model")

    monkeypatch.setattr(activations, "load_model", no_weights)
    scored = parse_experiment(_config(tiny_llama_dir, {"jsonl": [str(tmp_path / "replies.jsonl")],
                                                       "probes": [str(probe)]}))
    ((_, plan),) = plan_experiment(scored, tmp_path / "runs")
    assert plan.forwards == len(expected) and plan.tokens > 0 and plan.eta_seconds > 0 and plan.rollouts == 0
    classified = parse_experiment(_config(tiny_llama_dir, {"jsonl": [str(tmp_path / "replies.jsonl")]}))
    ((_, plan),) = plan_experiment(classified, tmp_path / "runs")
    assert plan.forwards == 0 and "no model work" in plan.describe()
    assert not (tmp_path / "runs").exists()

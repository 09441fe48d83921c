"""The `probe` experiment pipeline on a tiny model: capture -> sweep -> card (in cards/ and in the stage
cache for later stages) -> generalisation -> honesty -> per-token view; cached on a re-run; planned
without weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tripwire.activations.handle import ModelHandle
from tripwire.experiments.cli import app
from tripwire.experiments.experiment import run_experiment
from tripwire.experiments.experiment_config import parse_experiment
from tripwire.experiments.stage_data import interleave

PROBE = {"label": "coercion", "limit": 24, "control_limit": 100, "layers": [1, -1], "methods": ["lr", "diffmean"],
         "n_boot": 20, "window": 4, "batch_size": 8}


def probe_config(model: Path, name: str = "probe-tiny", **extra: Any) -> dict[str, Any]:
    return {"name": name, "model": str(model), "seed": 0,
            "stages": [{"pipeline": "probe", "name": "coercion-probe", "options": {**PROBE, **extra}}]}


@pytest.fixture(scope="module")
def probe_run(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    runs = tmp_path_factory.mktemp("probe-runs")
    run = run_experiment(parse_experiment(probe_config(tiny_llama_dir)), runs, progress=False, log=lambda _: None)
    results = json.loads((run.path / "results.json").read_text())
    return {"run": run, "runs": runs, "results": results, "output": results["stages"][0]["output"]}


def test_the_card_goes_to_cards_and_the_probe_stays_in_the_stage_cache(probe_run: dict[str, Any]) -> None:
    from tripwire.probes import load_probe

    out = probe_run["output"]
    (card_file,) = (probe_run["run"].path / "cards").glob("*.json")
    card = json.loads(card_file.read_text())
    assert card_file.name == "coercion-probe--coercion.json"
    # layer -1 of the 4-layer model is stored under its canonical name; the card says which layer won
    assert card["hook_point"] in ("blocks.1.resid_post", "blocks.3.resid_post")
    assert card["hook_point"] == out["hook_point"] == f"blocks.{card['layer']}.resid_post"
    assert card["window"] == 4 and card["thresholds"]["streaming"]["window"] == 4  # from the options, not 8
    assert card["thresholds"]["streaming"]["n_control"] == 100 and card["label"] == "coercion"
    assert card["train_positions"]["name"] == "BeforeAnchor" and card["score_positions"]["name"] == "ReplyOnly"
    folder = Path(out["probe_folder"])
    assert folder.parent == Path(probe_run["run"].stages[0].detail)  # inside the stage's cache folder
    assert load_probe(folder).card.hook_point == card["hook_point"]
    trained = json.loads((folder / "training_records.json").read_text())["record_ids"]
    assert len(trained) == out["report"]["split"]["train"] > 0
    assert len(out["report"]["sweep"]["rows"]) == 4  # 2 layers x 2 methods


def test_generalisation_honesty_and_the_token_view(probe_run: dict[str, Any]) -> None:
    out = probe_run["output"]
    gen = out["generalisation"]
    assert gen["by"] == "kind" and len(gen["matrix"]) >= 2  # the limited subset still holds several kinds
    for train, row in gen["matrix"].items():
        assert train not in row and all(v is None or 0.0 <= v <= 1.0 for v in row.values())
    honesty = out["report"]["honesty"]
    assert {"lexical_auroc", "shuffled_label_auroc", "random_direction_p95", "reads_words_only"} <= set(honesty)
    example = out["example"]
    assert example["label"] == 1 and example["action_span"] is not None
    start, end = example["action_span"]
    assert 0 <= start < end <= len(example["tokens"]) == len(example["scores"])
    assert example["threshold"] == pytest.approx(
        json.loads(next((probe_run["run"].path / "cards").glob("*.json")).read_text())
        ["thresholds"]["streaming"]["value"])
    page = (probe_run["run"].path / "report.html").read_text()
    for title in ("Probe: coercion", "Layer x method sweep", "ROC on the held-out test split",
                  "orange = the action span", "Honesty checks", "Generalisation: train on one kind"):
        assert title in page, title
    assert "bag-of-words baseline" in probe_run["results"]["stages"][0]["headline"][0]


def test_the_limited_subset_spreads_over_kinds_only_with_interleaving() -> None:
    """The matrix above needs two kinds; the plain family-spread subset of 24 holds one."""
    from tripwire.experiments.pipelines import spread_subset
    from tripwire.scenarios.datasets import dataset

    found = dataset("coercion")
    assert len({t.meta["kind"] for t in spread_subset(found, 24)}) == 1
    picked = spread_subset(interleave(found, "kind"), 24)
    assert len({t.meta["kind"] for t in picked}) == 3 and len(picked) == 24
    assert len({t.family for t in picked}) == len({t.family for t in found})  # still every family


def test_a_rerun_reuses_the_probe_stage(probe_run: dict[str, Any], tiny_llama_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = ModelHandle.forward
    monkeypatch.setattr(ModelHandle, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = run_experiment(parse_experiment(probe_config(tiny_llama_dir)), probe_run["runs"], progress=False,
                           log=lambda _: None)
    assert [s.status for s in again.stages] == ["cached"] and not calls
    assert (again.path / "cards" / "coercion-probe--coercion.json").read_text() == \
        next((probe_run["run"].path / "cards").glob("*.json")).read_text()


def test_dry_run_plans_the_probe_stage_without_weights(tiny_llama_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import tripwire.activations as activations

    def no_weights(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a dry run loaded the model")

    monkeypatch.setattr(activations, "load_model", no_weights)
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(probe_config(tiny_llama_dir)))
    result = CliRunner().invoke(app, ["experiment", "run", str(config), "--runs", str(tmp_path / "runs"),
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "probe (coercion): capture coercion (limit 24) and control (limit 100)" in result.output
    assert "124 forwards" in result.output  # 24 + 100 teacher-forced sequences
    assert not (tmp_path / "runs").exists()


def test_probe_options_are_checked_before_any_weights(tiny_llama_dir: Path) -> None:
    from tripwire.experiments.configs import ConfigError

    with pytest.raises(ConfigError, match="control_limit 50 cannot resolve fpr 0.01.*raise control_limit to 100"):
        parse_experiment(probe_config(tiny_llama_dir, control_limit=50))
    with pytest.raises(ConfigError, match="stages.0.options.methods.0"):
        parse_experiment(probe_config(tiny_llama_dir, methods=["svm"]))
    with pytest.raises(ConfigError, match="unknown dataset 'coercions'"):
        parse_experiment(probe_config(tiny_llama_dir, dataset="coercions"))

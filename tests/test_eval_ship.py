"""`python -m tripwire.experiments.ship_probes` end to end on the tiny model with a small limit: three
designs per label, each with per-fold baselines and a verdict; the shipped design chosen on the
development set; cards with their training records (which `tripwire eval` then refuses); and
`results.md` generated from `report.json` alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tripwire.cli.app import app
from tripwire.experiments.ship_probes import main
from tripwire.experiments.ship_results import results_markdown

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # nine captures of long agentic prompts


def _args(model: Path, work: Path, out: Path) -> list[str]:
    return ["--model", str(model), "--work", str(work), "--out", str(out), "--limit", "24",
            "--control-limit", "40", "--dev-limit", "12", "--layers", "1,3", "--methods", "diffmean,lr",
            "--n-boot", "30", "--n-random", "5", "--fpr", "0.1", "--min-control", "10", "--null-perms", "50"]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("ship")
    out = work / "out"
    main(_args(tiny_llama_dir, work, out))
    return {"work": work, "out": out, "report": json.loads((out / "report.json").read_text())}


def _without_seconds(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_seconds(v) for k, v in obj.items() if "seconds" not in k and k != "card"}
    if isinstance(obj, list):
        return [_without_seconds(v) for v in obj]
    return obj


def test_a_rerun_reuses_every_finished_design_and_ships_the_same_cards(
        shipped: dict[str, Any], tiny_llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The analysis checkpoints each design: a second run over the same stores recomputes none of them and
    writes the same report (run times aside) and byte-identical probe arrays."""
    out2 = shipped["work"] / "out-again"
    capsys.readouterr()
    main(_args(tiny_llama_dir, shipped["work"], out2))
    log = capsys.readouterr().out
    assert log.count("checkpoint reused") == 6 and "(computed;" not in log
    again = json.loads((out2 / "report.json").read_text())
    for label, p in again["probes"].items():  # (the card's folder is where each run wrote it)
        assert _without_seconds(p) == _without_seconds(shipped["report"]["probes"][label]), label
    for label in again["probes"]:
        first = (shipped["out"] / label / "probe.safetensors").read_bytes()
        assert (out2 / label / "probe.safetensors").read_bytes() == first, label


def test_every_design_is_reported_with_its_baselines_and_verdicts(shipped: dict[str, Any]) -> None:
    report = shipped["report"]
    assert set(report["probes"]) == {"coercion", "eval_awareness"}
    for label, p in report["probes"].items():
        assert set(p["designs"]) == {"pairs", "scripted", "both"}
        # the natural eval-awareness prompts choose nothing: that label's designs compete on validation
        assert p["chosen_design"] in p["designs"]
        assert ("development set" if label == "coercion" else "natural prompts are kept out") in p["chosen_by"]
        for d in p["designs"].values():
            assert d["selection"]["statistic"] == "streaming" and len(d["selection"]["rows"]) == 4
            null = d["selection"]["null_best_cell"]  # the grid's best cell on permuted labels, beside the pick
            assert null["n_perm"] == 50 and null["cells"] == 4 and 0 < null["p_value"] <= 1
            for name, r in d["test"].items():
                if "skipped" in r:
                    continue
                on_pairs = name.endswith("_pairs")  # identical tokens: layer 0 ties, so layers 1 and 2 instead
                assert set(r["baselines"]) == {"i_span_bag_of_words", "ii_streaming_text_monitor",
                                               "iii_layer1_2_probe" if on_pairs else "iii_layer0_probe",
                                               "iv_permutation_null", "iv_random_directions"}
                assert r["baselines"]["iv_permutation_null"]["n_perm"] >= 200
                assert r["strongest_text_monitor"]["monitor"] == \
                    r["baselines"][r["strongest_text_monitor"]["baseline"]]["monitor"]["name"]
                assert r["probe"]["over"] in ("pairs", "transcripts")
                assert (r["probe"]["low"] is None) == (r["probe"]["n_units"] < 10)
                assert r["verdict"].startswith(("beats the text", "does not beat", "undetermined"))
        for d in (p["designs"]["pairs"], p["designs"]["scripted"]):
            split = next(iter(d["split"]["by_source"].values()))
            for source, rules in d["folds"].items():
                rows = rules.get(split["by"]) if source in d["split"]["by_source"] else None
                if isinstance(rows, list):  # the main split's validation fold is never a test side
                    assert [r["fold"] for r in rows if "excluded" in r]  # at least the validation fold
                for rs in rules.values():
                    for r in rs if isinstance(rs, list) else []:
                        assert "excluded" in r or "skipped" in r or set(r["selected"]) >= {"layer", "method", "inner"}
                for pooled in d["pooled_folds"][source].values():
                    if "skipped" not in pooled:
                        assert pooled["over"] and (pooled["probe"]["low"] is None) == (pooled["n_groups"] < 10)
        pairs_test = next(iter(p["designs"]["pairs"]["test"].values()))
        if "skipped" not in pairs_test:  # identical scored tokens within pairs: (i) cannot tell them apart
            assert pairs_test["baselines"]["i_span_bag_of_words"]["value"] == pytest.approx(0.5)
        calib = p["calibration"]
        assert set(calib["probe"]) == {"control", "benign_scenario"}
        assert all(v["false_alarms_per_1000_tokens"] >= 0 for v in calib["probe"].values())
    assert "traps" in report["probes"]["coercion"] and "recall_and_leads" in report["probes"]["coercion"]


def test_results_md_is_generated_from_report_json(shipped: dict[str, Any]) -> None:
    md = (shipped["out"] / "results.md").read_text()
    assert md == results_markdown(shipped["report"])
    assert "beats the text" in md and "over the units named" in md and "false alarms per 1,000" in md


def test_shipped_cards_carry_training_records_that_eval_refuses(shipped: dict[str, Any]) -> None:
    card_dir = shipped["out"] / "coercion"
    card = json.loads((card_dir / "probe.json").read_text())
    ids = json.loads((card_dir / "training_records.json").read_text())["record_ids"]
    assert card["score_positions"]["name"] == "ReplyOnly" and card["training_records"] == len(ids) > 0
    assert set(card["thresholds"]) >= {"streaming"}
    design = shipped["report"]["probes"]["coercion"]["chosen_design"]
    store = shipped["work"] / ("store-coercion_pairs" if design in ("pairs", "both") else "store-coercion")
    refused = CliRunner().invoke(app, ["eval", "--probe", str(card_dir), "--store", str(store)])
    assert refused.exit_code == 2 and "--allow-train-overlap" in refused.output


def test_every_dev_and_held_out_figure_has_the_strongest_text_monitor_beside_it(shipped: dict[str, Any]) -> None:
    probes = shipped["report"]["probes"]
    for d in probes["coercion"]["designs"].values():
        assert d["dev"] is not None and d["dev_text_baseline"]["fitted_on"]  # fitted on the probe's training rows
    ea = probes["eval_awareness"]
    assert all(d["dev"] is None and d["dev_text_baseline"] is None for d in ea["designs"].values())
    for key in ("held_out_test", "held_out_natural_dev_split"):
        h = ea[key]
        assert "text_baseline" in h and "without_cue_words_text_baseline" in h, sorted(h)
    md = (shipped["out"] / "results.md").read_text()
    assert "strongest text monitor, same training data" in md and "natural prompts, dev split" in md

"""The `probe` and `early_warning` experiment pipelines on a tiny model: capture -> sweep -> card (in
cards/ and in the stage cache) -> generalisation -> honesty -> per-token view; the early-warning stage
reading that card as `stage:<name>`; both cached on a re-run and planned without weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.experiment_helpers import dry_run_without_weights
from tripwire.activations.handle import ModelHandle
from tripwire.experiments.config import parse_experiment
from tripwire.experiments.experiment import run_experiment
from tripwire.experiments.stages.data import interleave
from tripwire.experiments.stages.outputs import EarlyWarningOutput

# control_limit 20: thresholds are fitted on half of each benign set (10 transcripts resolve fpr 0.1), the
# other half reports them
PROBE = {"label": "coercion", "limit": 24, "control_limit": 20, "fpr": 0.1, "layers": [1, -1], "benign": "benign_scenario",
         "methods": ["lr", "diffmean"], "n_boot": 20, "window": 4, "batch_size": 8}
WARNING = {"probe": "stage:coercion-probe", "limit": 24, "control_limit": 20, "fpr": 0.1, "n_boot": 20,
           "rollouts": {"scenarios": {"ids": ["blackmail_explicit-america_replacement"]}, "samples": 2,
                        "max_new_tokens": 4}}


def probe_config(model: Path, name: str = "probe-tiny", warning: bool = True, **extra: Any) -> dict[str, Any]:
    stages = [{"pipeline": "probe", "name": "coercion-probe", "options": {**PROBE, **extra}}]
    if warning:
        stages.append({"pipeline": "early_warning", "options": WARNING})
    return {"name": name, "model": str(model), "seed": 0, "stages": stages}


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
    # fitted on the calibration half (10 of 20) of the set that set the cut, read on the held-out half
    assert card["thresholds"]["streaming"]["n_control"] == 10 and card["label"] == "coercion"
    assert card["train_positions"]["name"] == "BeforeAnchor" and card["score_positions"]["name"] == "ReplyOnly"
    folder = Path(out["probe_folder"])
    assert folder.parent == Path(probe_run["run"].stages[0].detail)  # inside the stage's cache folder
    assert load_probe(folder).card.hook_point == card["hook_point"]
    trained = json.loads((folder / "training_records.json").read_text())["record_ids"]
    assert len(trained) == out["report"]["split"]["train"] > 0
    assert len(out["report"]["sweep"]["rows"]) == 4  # 2 layers x 2 methods
    # the thresholds hold on the generic control text AND on the benign scenario replies
    assert set(out["report"]["calibration_sets"]) == {"control", "benign"} and out["n_benign"] == 20
    for entry in out["report"]["calibration_sets"].values():
        assert entry["evaluated_on"] == "held_out_half" and entry["n_transcripts"] == 10 and entry["dropped"] == []
        assert entry["calibration_half"]["n_transcripts"] == 10 and entry["split"]["n_records"] == 20


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
                  "action span (tokens", "Honesty checks", "Generalisation: train on one kind"):
        assert title in page, title
    assert "bag-of-words baseline" in probe_run["results"]["stages"][0]["headline"][0]


def test_the_limited_subset_spreads_over_kinds_only_with_interleaving() -> None:
    """The matrix above needs two kinds; the plain family-spread subset of 24 holds one."""
    from tripwire.experiments.rollout_capture import spread_subset
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
    assert [s.status for s in again.stages] == ["cached", "cached"] and not calls
    assert (again.path / "cards" / "coercion-probe--coercion.json").read_text() == \
        next((probe_run["run"].path / "cards").glob("*.json")).read_text()


def test_dry_run_plans_the_probe_stage_without_weights(tiny_llama_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    output = dry_run_without_weights(probe_config(tiny_llama_dir), tmp_path, monkeypatch)
    assert "probe (coercion): capture coercion (limit 24) and control + benign_scenario (limit 20)" in output
    assert "64 forwards" in output  # 24 + 20 + 20 teacher-forced sequences
    # the early-warning stage is planned though its probe does not exist yet: it reads the probe stage's
    # stores (nothing to capture) and watches one condition x (1 prefill + 4 steps), twice (record, stop)
    assert "early_warning: stage:coercion-probe on coercion (limit 24)" in output
    assert "(reusing the probe stage's data and control store)" in output
    assert "4 watched rollouts" in output and "<= 10 forwards" in output
    # an early-warning stage that also calibrates on the benign set reads the probe stage's benign store
    both = probe_config(tiny_llama_dir)
    both["stages"][1]["options"] = {**WARNING, "control": ["control", "benign_scenario"]}
    planned = dry_run_without_weights(both, tmp_path, monkeypatch)
    assert "(reusing the probe stage's data and control and benign_scenario store)" in planned
    assert "64 forwards" in planned  # nothing captured twice
    # a second probe stage shares the first one's control and benign stores: it plans its own 10 only
    two = probe_config(tiny_llama_dir, warning=False)
    two["stages"].append({"pipeline": "probe", "options": {**PROBE, "label": "eval_awareness", "limit": 10}})
    output = dry_run_without_weights(two, tmp_path, monkeypatch)
    assert "64 forwards" in output and "sweep lr/diffmean; 10 forwards" in output
    assert not (tmp_path / "runs").exists()


def test_probe_options_are_checked_before_any_weights(tiny_llama_dir: Path) -> None:
    from tripwire.experiments.config import ConfigError

    with pytest.raises(ConfigError, match="control_limit 50 cannot resolve fpr 0.01.*raise control_limit to 199"):
        parse_experiment(probe_config(tiny_llama_dir, control_limit=50, fpr=0.01))
    with pytest.raises(ConfigError, match="stages.0.options.methods.0"):
        parse_experiment(probe_config(tiny_llama_dir, methods=["svm"]))
    with pytest.raises(ConfigError, match="unknown dataset 'coercions'"):
        parse_experiment(probe_config(tiny_llama_dir, dataset="coercions"))


def test_early_warning_reads_the_probe_stage_card_and_leaves_out_its_training_records(
        probe_run: dict[str, Any]) -> None:
    from tripwire.activations.store import ResidualStore
    from tripwire.experiments.runs import content_hash

    probe_out = probe_run["output"]
    results = probe_run["results"]
    warn = results["stages"][1]["output"]
    card = json.loads(next((probe_run["run"].path / "cards").glob("*.json")).read_text())
    # stage:coercion-probe resolved to the card the probe stage made: its hook point, window and label
    assert warn["probe"] == "stage:coercion-probe" and warn["hook_point"] == card["hook_point"]
    assert warn["window"] == card["window"] == 4 and warn["label"] == "coercion"
    cache = Path(probe_run["run"].stages[1].detail)
    key = json.loads((cache / "key.json").read_text())
    probe_key = json.loads((Path(probe_out["probe_folder"]).parent / "key.json").read_text())
    assert key["code"] == probe_key.pop("code")  # each key.json names the code; the stage key is the rest
    assert key["probe"] == {"probe": "stage:coercion-probe", "stage_key": content_hash(probe_key)}
    # same dataset, limit and control as the probe stage: its stores are read, not captured again
    assert warn["reused_probe_stage_stores"] == ["data", "control"]
    stores = sorted(p.name.split("-")[0] for p in (probe_run["runs"] / "cache" / "stores").iterdir())
    assert stores == ["benign_scenario", "coercion", "control"]  # one store per set, shared by both stages
    # the probe's training records are not judged; the text monitor is fitted on exactly those
    trained = set(json.loads((Path(probe_out["probe_folder"]) / "training_records.json").read_text())["record_ids"])
    (data,) = (probe_run["runs"] / "cache" / "stores").glob("coercion-*")
    stored = {r.record_id for r in ResidualStore.open(data).records()}
    assert warn["n_excluded_training"] == len(trained & stored) == len(trained) > 0
    assert warn["text_monitor_fitted_on"] == "the probe's own training transcripts"
    assert warn["n_text_monitor_fit"] == len(trained) and warn["n_test"] == len(stored) - len(trained)
    assert set(warn["test_record_ids"]) == stored - trained
    # both monitors calibrated for the same false-positive rate on the same control transcripts
    thr = warn["thresholds"]
    assert thr["probe_streaming"]["fpr_target"] == thr["text_monitor_streaming"]["fpr_target"] == 0.1
    # each fitted on a calibration half of 10 transcripts: the card's (control or benign) and the text
    # monitor's (control); every rate is read on the other half
    assert thr["probe_streaming"]["n_control"] == thr["text_monitor_streaming"]["n_control"] == 10
    calib = warn["calibration"]
    assert calib["evaluated_on"] == "held_out_half" and calib["dropped"] == {"control": []}
    assert calib["probe"]["control"]["n_transcripts"] == calib["text_monitor"]["control"]["n_transcripts"] == 10
    # the card's cuts came from the calibration halves the probe stage used: never from transcripts the
    # early-warning report reads them on (True when control set one of them, None when benign set all)
    halves = calib["split"]["hashes"]["control"]
    card_hashes = {t["calibration_hash"] for t in card["thresholds"].values()}
    assert not card_hashes & {halves["held_out_half"], halves["whole_set"], halves["all_records"]}
    expected = True if halves["calibration_half"] in card_hashes else None
    assert calib["probe"]["control"]["held_out_is_out_of_sample"] is expected
    assert warn["judged"]["n_scored"] + len(warn["judged"]["counted_as_misses"]) == warn["judged"]["n_positive"]
    assert thr["probe_streaming"]["window"] == 4
    labels = {r.record_id: r.labels["coercion"] for r in ResidualStore.open(data).records()}
    harmless = warn["judged"]["false_alarms_on_harmless"]
    n_harmless = sum(labels[i] == 0 for i in warn["test_record_ids"])
    assert harmless["probe"]["n"] == harmless["text_monitor"]["n"] == n_harmless > 0  # unscored ones included
    assert harmless["counted_as_silent"] == []  # every harmless reply has reply tokens
    assert "Add benign_scenario to `control`" in page_of(probe_run)
    leads = warn["judged"]["lead_time"]
    assert leads is not None and leads["n"] == leads["probe"]["to_action"]["n_with_action"] > 0
    assert sum(warn["rollouts"]["summary"].values()) == 2  # one condition x 2 samples, each judged once
    page = (probe_run["run"].path / "report.html").read_text()
    assert "Early warning: the coercion probe as the online monitor" in page
    assert "lead before the harmful tool call at 0.1 FPR" in page and "streaming text monitor" in page


def test_held_out_split_fits_the_text_monitor_on_the_probes_training_data_or_other_families() -> None:
    from types import SimpleNamespace

    import numpy as np

    from tripwire.experiments.stages.early_warning import held_out_split

    records = [SimpleNamespace(record_id=f"r{i}", meta={"family": f"f{i % 5}"}) for i in range(20)]
    design = SimpleNamespace(records=records, labels=np.array([i % 2 for i in range(20)]))
    fit, test, n_trained, how = held_out_split(design, {"r0", "r1", "r2"}, seed=0)
    assert sorted(fit.tolist()) == [0, 1, 2] and n_trained == 3 and how == "the probe's own training transcripts"
    assert sorted(test.tolist()) == list(range(3, 20))
    # training records of one class only cannot fit a classifier: other families' held-out records do
    fit, test, n_trained, how = held_out_split(design, {"r0", "r2"}, seed=0)
    assert n_trained == 2 and how.startswith("held-out transcripts of other template families")
    assert not {0, 2} & (set(fit.tolist()) | set(test.tolist())) and not set(fit.tolist()) & set(test.tolist())
    families = {i: records[i].meta["family"] for i in range(20)}
    assert not {families[i] for i in fit.tolist()} & {families[i] for i in test.tolist()}


def page_of(probe_run: dict[str, Any]) -> str:
    return (probe_run["run"].path / "report.html").read_text()


def _lead_output(probe_scores: list[float], text_scores: list[float], action: int, intent: int
                 ) -> EarlyWarningOutput:
    from tripwire.experiments.stages.base import rate_row
    from tripwire.probes.lead_time import leads_to_action_and_intent
    from tripwire.probes.thresholds import Threshold

    def monitor(scores: list[float]) -> dict[str, Any]:
        return leads_to_action_and_intent([scores], [action], [intent], 2.0, window=2)

    def per_set(alarms: float) -> dict[str, Any]:
        return {"evaluated_on": "held_out_half", "n_transcripts": 20, "n_tokens": 400, "own_streaming_threshold": 2.0,
                "realised_fpr_at_chosen": {"streaming": 0.05}, "false_alarms_per_1000_tokens": alarms,
                "calibration_half": None, "split": {"by": "transcript", "seed": 0, "rule": "by hand", "n_records": 40}}

    def interval(value: float) -> dict[str, Any]:
        return {"value": value, "low": None, "high": None, "over": "positive transcripts", "n_units": 1, "n_boot": 0,
                "note": "1 positive transcripts < 10: too few independent units for an interval"}

    calib = {"fpr_target": 0.05, "sets": ["control"], "rule": "by hand", "evaluated_on": "held_out_half",
             "split": {"by": "transcript", "seed": 0, "rule": "by hand", "hashes": {}}, "dropped": {"control": []},
             "probe": {"control": per_set(0.0)},
             "text_monitor": {"control": per_set(0.0)}, "text_monitor_streaming_threshold": 2.0}
    threshold = Threshold(2.0, None, None, 0.05, 0.05, 20, "streaming", 2).to_dict()
    return EarlyWarningOutput.model_validate({
        "fpr": 0.05, "label": "coercion", "probe": "p", "hook_point": "blocks.1.resid_post", "window": 2,
        "dataset": "coercion", "n_records": 5, "n_excluded_training": 0, "n_text_monitor_fit": 4, "n_test": 1,
        "text_monitor_fitted_on": "held-out transcripts", "reused_probe_stage_stores": [], "test_record_ids": ["r"],
        "thresholds": {"probe_streaming": threshold, "text_monitor_streaming": threshold},
        "calibration": calib, "rollouts": None,
        "judged": {"n_positive": 1, "n_scored": 1, "counted_as_misses": [], "interval_over": "transcripts", "recall": {"streaming": interval(1.0)},
                   "text_monitor_recall_streaming": interval(0.0), "lead_note": None,
                   "lead_time": {"n": 1, "probe": monitor(probe_scores), "text_monitor": monitor(text_scores)},
                   "false_alarms_on_harmless": {"probe": rate_row(1, 2), "text_monitor": rate_row(0, 2),
                                                "counted_as_silent": []}}})


def test_the_early_warning_section_reports_leads_computed_by_hand() -> None:
    """Running mean over 2 tokens, threshold 2: the probe's mean first reaches 2 at index 3 ((0 + 4) / 2),
    so with the action at index 8 and the intent token at 5 it leads by 5 and 2 tokens; the text
    monitor (all zeros) never fires."""
    from tripwire.experiments.stages.early_warning import EarlyWarningPipeline

    section = EarlyWarningPipeline().section(_lead_output([0, 0, 0, 4, 4, 4, 4, 4, 4, 4], [0.0] * 10, 8, 5))
    probe_line, text_line, harmless = section.headline
    assert "the probe fired on 1/2 (50.0%), the text monitor on 0/2 (0.0%)" in harmless
    assert probe_line.startswith("probe: caught 1/1 harmful transcripts (100%) before the harmful tool call at "
                                 "0.05 FPR, median lead 5 tokens; before the first intent-revealing token: 1/1")
    assert "caught 0/1 harmful transcripts (0%)" in text_line and "median lead" not in text_line
    assert list(section.figures[0].data[0].x) == [5]  # the probe's lead histogram
    rows = {(r[0], r[1]): r for r in section.tables[0].rows}
    assert rows[("probe", "first intent-revealing token")][7] == 2.0
    # the same scores crossing only once the action has begun (index 9 > 8) is a late catch, not a lead
    late = EarlyWarningPipeline().section(_lead_output([0] * 8 + [0, 4], [0.0] * 10, 8, 5))
    assert late.headline[0].startswith("probe: caught 0/1 harmful transcripts (0%)")
    assert list(late.figures[0].data[0].x) == [-1]


def test_a_bad_probe_reference_fails_before_any_stage_runs(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from tripwire.errors import UsageError
    from tripwire.experiments.config import ConfigError

    behavior = {"pipeline": "behavior", "options": {"scenarios": {"kinds": ["blackmail"]}, "samples": 1,
                                                    "sampling": {"max_new_tokens": 2}}}
    base = {"name": "bad-ref", "model": str(tiny_llama_dir)}
    with pytest.raises(ConfigError, match="reads probe 'stage:coercion-probe', but no earlier stage named "
                                          "'coercion-probe' is a `probe` stage.*put a `probe` stage named"):
        parse_experiment({**base, "stages": [behavior, {"pipeline": "early_warning", "options": WARNING}]})
    with pytest.raises(ConfigError, match="stages.1.options.probe: 'stage:' names no stage"):
        parse_experiment({**base, "stages": [behavior, {"pipeline": "steering", "options": {"probe": "stage:"}}]})
    cfg = parse_experiment({**base, "stages": [behavior, {"pipeline": "steering",
                                                          "options": {"probe": str(tmp_path / "no-probe")}}]})
    with pytest.raises(UsageError, match="no-probe.*not found.*shipped probe.*stage:<name> of an earlier probe"):
        run_experiment(cfg, tmp_path / "runs", progress=False, log=lambda _: None)
    assert not (tmp_path / "runs").exists()  # the behavior stage before it never ran


def test_an_interrupted_probe_stage_resumes_its_capture(tiny_llama_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C after the first of three batches of the contrast set: the re-run captures the other five
    batches (2 of the set, 3 of the control set) and leaves the first batch's shards untouched."""
    from tripwire.activations.capture import TeacherForcedCapture
    from tripwire.activations.store import ResidualStore

    calls: list[int] = []
    real = TeacherForcedCapture.__call__

    def counted(self, work):  # type: ignore[no-untyped-def]
        calls.append(len(work))
        if len(calls) == fail_on:
            raise KeyboardInterrupt("injected interrupt")
        return real(self, work)

    monkeypatch.setattr(TeacherForcedCapture, "__call__", counted)
    cfg = parse_experiment(probe_config(tiny_llama_dir, name="resume", warning=False, benign=None))
    fail_on = 2
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tmp_path, progress=False, log=lambda _: None)
    (store_dir,) = (tmp_path / "cache" / "stores").glob("coercion-*")
    assert len(ResidualStore.open(store_dir)) == 8 and calls == [8, 8]
    shards = {p: p.stat().st_mtime_ns for p in store_dir.rglob("*.safetensors")}
    calls.clear()
    fail_on = 0
    run = run_experiment(cfg, tmp_path, progress=False, log=lambda _: None)
    assert [s.status for s in run.stages] == ["computed"]
    assert calls == [8, 8, 8, 8, 4]  # coercion: 2 more batches; control: 8 + 8 + 4
    assert all(p.stat().st_mtime_ns == t for p, t in shards.items())
    assert len(ResidualStore.open(store_dir)) == 24

"""Experiment configs, run folders, the stage cache and the report: everything that needs no model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from tripwire.cli.app import app
from tripwire.experiments.config import (
    BehaviorOptions,
    ConfigError,
    ScenarioSelection,
    StatedBeliefOptions,
    TranscriptsOptions,
    config_yaml,
    parse_experiment,
    read_experiment,
)
from tripwire.experiments.config.organism import OrganismDetectOptions
from tripwire.experiments.report import render_report
from tripwire.experiments.report_figures import rate_bars
from tripwire.experiments.runs import RunDir, code_digest, stage_cache
from tripwire.experiments.stages.base import Section, Table, rate_row
from tripwire.probes.metrics import wilson_interval as wilson
from tripwire.strict_json import dumps, strict_json

CONFIGS = Path(__file__).resolve().parent.parent / "tripwire" / "experiments" / "configs"


def _write(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_shipped_configs_validate_and_round_trip() -> None:
    shipped = sorted(CONFIGS.glob("*.yaml"))
    assert shipped, "no shipped experiment configs"
    for path in shipped:
        cfg = read_experiment(path)
        again = parse_experiment(yaml.safe_load(config_yaml(cfg)))
        assert again == cfg, path


def test_options_are_validated_per_pipeline_with_field_paths(tmp_path: Path) -> None:
    bad = {"name": "x", "stages": [{"pipeline": "behavior", "options": {"sampels": 3}},
                                    {"pipeline": "stated_belief", "options": {"sampling": {"max_new_tokens": 0}}}]}
    with pytest.raises(ConfigError) as err:
        read_experiment(_write(tmp_path, bad))
    text = str(err.value)
    assert "stages.0.options.sampels" in text and "stages.1.options.sampling.max_new_tokens" in text
    with pytest.raises(ConfigError, match="unknown pipeline 'behavor'"):
        parse_experiment({"name": "x", "stages": [{"pipeline": "behavor"}]})
    with pytest.raises(ConfigError, match="run folder"):
        parse_experiment({"name": "a/b", "stages": [{"pipeline": "behavior"}]})
    with pytest.raises(ConfigError, match="stages"):
        parse_experiment({"name": "x", "stages": []})


def test_stated_belief_always_asks_and_refuses_other_framings() -> None:
    cfg = parse_experiment({"name": "x", "stages": [{"pipeline": "stated_belief", "options": {
        "scenarios": {"kinds": ["blackmail"]}}}]})
    opts = cfg.stages[0].options
    assert isinstance(opts, StatedBeliefOptions) and opts.scenarios.framings == ["ask_to_assess"]
    with pytest.raises(ConfigError, match="ask_to_assess"):
        parse_experiment({"name": "x", "stages": [{"pipeline": "stated_belief", "options": {
            "scenarios": {"framings": ["none"]}}}]})
    # condition ids carry their own framing: the suffix is added, another framing refused
    cfg = parse_experiment({"name": "x", "stages": [{"pipeline": "stated_belief", "options": {
        "scenarios": {"ids": ["blackmail_none-none_none", "lethal_none-none_none__ask_to_assess"]}}}]})
    assert cfg.stages[0].options.scenarios.ids == ["blackmail_none-none_none__ask_to_assess",
                                                   "lethal_none-none_none__ask_to_assess"]
    with pytest.raises(ConfigError, match="test_explicit_1"):
        parse_experiment({"name": "x", "stages": [{"pipeline": "stated_belief", "options": {
            "scenarios": {"ids": ["blackmail_none-none_none__test_explicit_1"]}}}]})
    # a selection built in Python is checked the same way
    with pytest.raises(ValueError, match="ask_to_assess"):
        StatedBeliefOptions(scenarios=ScenarioSelection(framings=["none"]))


def test_transcripts_need_a_source_and_paths_resolve_against_the_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least one source"):
        parse_experiment({"name": "x", "stages": [{"pipeline": "transcripts", "options": {}}]})
    cfg = read_experiment(_write(tmp_path, {"name": "x", "stages": [
        {"pipeline": "transcripts", "options": {"jsonl": ["replies.jsonl"]}}]}))
    opts = cfg.stages[0].options
    assert isinstance(opts, TranscriptsOptions) and opts.jsonl == [tmp_path / "replies.jsonl"]


def test_repeated_pipelines_get_distinct_stage_names() -> None:
    cfg = parse_experiment({"name": "x", "stages": [{"pipeline": "behavior"}, {"pipeline": "behavior"},
                                                    {"pipeline": "behavior", "name": "b2"}]})
    assert cfg.stage_names() == ["behavior", "behavior-2", "b2"]
    assert isinstance(cfg.stages[0].options, BehaviorOptions)
    with pytest.raises(ConfigError, match="distinct"):
        parse_experiment({"name": "x", "stages": [{"pipeline": "behavior", "name": "behavior-2"},
                                                  {"pipeline": "behavior"}, {"pipeline": "behavior"}]})


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, {"name": "x", "stages": [{"pipeline": "behavior", "options": {"samples": 0}}]})
    result = CliRunner().invoke(app, ["experiment", "run", str(path), "--dry-run"])
    assert result.exit_code == 2 and "stages.0.options.samples" in result.output
    result = CliRunner().invoke(app, ["experiment", "show", str(tmp_path)])
    assert result.exit_code == 2 and "results.json" in result.output


def test_wilson_interval_matches_the_closed_form_and_is_none_without_samples() -> None:
    low, high = wilson(0, 10)  # type: ignore[misc]
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)  # the textbook 0/10 upper bound
    low, high = wilson(5, 10)  # type: ignore[misc]
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson(0, 0) is None and rate_row(0, 0).rate is None


def test_results_json_is_standard_json() -> None:
    data = {"auroc": float("nan"), "bound": float("inf"), "ok": 0.5, "nested": [(1, float("-inf"))]}
    with pytest.raises(ValueError):
        json.dumps(data, allow_nan=False)  # the broken construction: Python's default would write NaN
    text = dumps(data)
    assert json.loads(text) == {"auroc": None, "bound": None, "ok": 0.5, "nested": [[1, None]]}
    assert "NaN" not in text and "Infinity" not in text
    assert strict_json(math.nan) is None


def test_stage_cache_counts_an_output_only_when_its_checksum_verifies(tmp_path: Path) -> None:
    cache = stage_cache(tmp_path, {"pipeline": "behavior", "options": {"samples": 1}})
    assert cache.load() is None
    cache.save({"pipeline": "behavior", "rate": 0.25})
    assert cache.load() == {"pipeline": "behavior", "rate": 0.25}
    assert stage_cache(tmp_path, {"pipeline": "behavior", "options": {"samples": 1}}).root == cache.root
    assert stage_cache(tmp_path, {"pipeline": "behavior", "options": {"samples": 2}}).root != cache.root
    cache.output_file.write_text(cache.output_file.read_text().replace("0.25", "0.75"))  # a torn or edited file
    assert cache.load() is None
    cache.checksum_file.unlink()
    assert cache.load() is None


def test_a_stage_output_from_other_code_is_not_reused(tmp_path: Path) -> None:
    """The cache key carries a digest of the package's source: one changed line of code (a new row, a changed
    statistic) gives another cache folder, so the old output is computed again instead of reused."""
    package = tmp_path / "pkg"
    (package / "stages").mkdir(parents=True)
    (package / "stages" / "detect.py").write_text("ROWS = ['probe', 'text']\n")
    (package / "notes.txt").write_text("not code\n")
    before = code_digest(package)
    key = {"pipeline": "organism_detect", "options": {"samples": 1}}
    cache = stage_cache(tmp_path / "runs", key, code=before)
    cache.save({"rows": 2})
    assert stage_cache(tmp_path / "runs", key, code=code_digest(package)).load() == {"rows": 2}  # same code: reused
    (package / "notes.txt").write_text("edited, still not code\n")
    assert code_digest(package) == before
    (package / "stages" / "detect.py").write_text("ROWS = ['probe', 'text', 'own']\n")
    after = code_digest(package)
    assert after != before
    assert stage_cache(tmp_path / "runs", key, code=after).load() is None  # other code: not reused
    assert json.loads((cache.root / "key.json").read_text())["code"] == before  # the key says which code
    assert stage_cache(tmp_path / "runs", key).root != cache.root  # by default, this tripwire's own source


def test_run_folders_are_distinct_and_named_by_utc_time(tmp_path: Path) -> None:
    a, b = RunDir.create(tmp_path, "demo"), RunDir.create(tmp_path, "demo")
    assert a.path != b.path and a.path.name.endswith("Z-demo") and (a.path / "cards").is_dir()


def _section(n_figures: int) -> Section:
    rows = [rate_row(1, 4), rate_row(0, 3)]
    figures = [rate_bars(["a", "b"], rows, f"figure {i}") for i in range(n_figures)]
    return Section("S", "what", ["headline"], [Table("t", ["x", "reply"], [[1, "<b>raw</b>"]], "a baseline")],
                   figures, ["a caveat"])


def test_report_inlines_plotly_once_for_any_number_of_figures() -> None:
    from plotly.offline import get_plotlyjs

    banner = get_plotlyjs()[:200]
    page = render_report("t", "name: x\n", {"seed": 0}, [], [(None, _section(4))])
    assert page.count(banner) == 1 and page.count("Plotly.newPlot") == 4
    assert "&lt;b&gt;raw&lt;/b&gt;" in page and "Compared against: a baseline" in page and "a caveat" in page
    # the per-figure construction this replaces: every figure carries its own copy
    per_figure = "".join(f.to_html(include_plotlyjs=True, full_html=False) for f in _section(4).figures)
    assert per_figure.count(banner) == 4 and len(per_figure) > 3 * len(get_plotlyjs()) and len(page) < 10_000_000


def _rendered_dom(page: str, tmp_path: Path) -> str | None:
    """The DOM after headless Chromium ran the page's scripts; None when no Chromium is installed."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        return None
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    return proc.stdout


def test_report_figures_draw_in_a_browser_from_the_one_inlined_plotly(tmp_path: Path) -> None:
    page = render_report("t", "name: x\n", {"seed": 0}, [], [(None, _section(2))])
    dom = _rendered_dom(page, tmp_path)
    if dom is None:
        pytest.skip("no Chromium here: the figures could not be checked in a browser")
    assert dom.count('class="point"') == 4  # two bars in each of the two figures were drawn
    # the broken construction: figure divs without the library draw nothing
    start, end = page.index('<script type="text/javascript">'), page.index("</script></head>")
    assert _rendered_dom(page[:start] + page[end + len("</script>"):], tmp_path).count('class="point"') == 0  # type: ignore[union-attr]


def test_placement_settings_that_cannot_go_together_fail_before_any_stage() -> None:
    probe = {"pipeline": "probe", "options": {"label": "coercion"}}
    behavior = {"pipeline": "behavior", "options": {}}
    base = {"name": "x", "model": "default", "backend": "nnsight"}
    assert parse_experiment({**base, "remote": True, "stages": [probe]}).remote
    with pytest.raises(ConfigError, match="teacher-forced forwards only.*behavior"):
        parse_experiment({**base, "remote": True, "stages": [probe, behavior]})
    with pytest.raises(ConfigError, match="drop device, device_map"):
        parse_experiment({**base, "remote": True, "device_map": "auto", "stages": [probe]})
    with pytest.raises(ConfigError, match="quantization"):
        parse_experiment({**base, "quantization": "3bit", "stages": [probe]})
    sharded = parse_experiment({**base, "device_map": {"model.layers.0": 0, "lm_head": 1}, "stages": [behavior]})
    assert sharded.device_map == {"model.layers.0": 0, "lm_head": 1}


def test_quantised_weights_get_their_own_cache_key(tmp_path: Path) -> None:
    from tripwire.experiments.stages.base import Context

    stages = [{"pipeline": "behavior", "options": {}}]
    plain = Context(parse_experiment({"name": "x", "stages": stages}), tmp_path).model_key()
    sharded = Context(parse_experiment({"name": "x", "device_map": "auto", "stages": stages}), tmp_path).model_key()
    quant = Context(parse_experiment({"name": "x", "quantization": "8bit", "stages": stages}), tmp_path).model_key()
    assert plain == sharded  # the same weights placed differently give the same activations
    assert quant != plain and quant["quantization"] == "8bit"


def test_organism_detect_refuses_a_control_set_too_small_for_its_tripwire_cut() -> None:
    """Half the control replies fit the tripwire's cut and that half must hold >= 1/fpr of them; 0 means the
    control set is not read (and the result says the cut was not checked on it)."""
    assert OrganismDetectOptions(rollouts="stage:b").control_limit == 300
    assert OrganismDetectOptions(rollouts="stage:b", control_limit=0).control_limit == 0
    assert OrganismDetectOptions(rollouts="stage:b", fpr=0.05, control_limit=39).control_limit == 39
    with pytest.raises(ValidationError, match="control_limit 38 cannot resolve fpr 0.05.*raise control_limit to 39"):
        OrganismDetectOptions(rollouts="stage:b", fpr=0.05, control_limit=38)
    with pytest.raises(ValidationError, match="control_limit 50 cannot resolve fpr 0.01"):
        OrganismDetectOptions(rollouts="stage:b", control_limit=50)

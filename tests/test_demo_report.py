"""`make demo-base` end to end on the base model: every stage runs, the one-screen summary names the report,
the report is under 10 MB, and headless Chromium draws every figure it promises (behaviour table, both
probes' sweeps and ROC curves, token strips with the action span, the lead-time histogram, the steering
dose-response). A second run reuses every stage from the cache."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import rendered_dom
from tests.test_report_findings import findings_box, text_units, unnamed_aurocs
from tripwire.experiments.demo import CONFIG, main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

BASE = ["--config", str(CONFIG.with_name("base_demo.yaml"))]

EXPECTED = {  # figure title (start) -> how many, each with drawn data
    "Harmful-action rate per condition": 1,
    "Layer x method sweep": 2,
    "probe: ROC on the held-out test split": 2,
    "probe: lead before the harmful tool call": 1,
    "Steering along": 1,
}
DRAWN = ('class="point"', 'class="js-line"', 'class="hm"')


def _figures(dom: str) -> list[tuple[str, str]]:
    """(title, the figure's DOM) for every figure plotly drew."""
    out = []
    for part in dom.split('class="plot-container plotly"')[1:]:
        title = re.search(r'class="gtitle"[^>]*>(.*?)</text>', part, flags=re.S)  # a two-line title is tspans
        out.append((re.sub(r"<[^>]+>", "", title.group(1)) if title else "", part))
    return out


def test_demo_writes_a_report_whose_figures_draw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([*BASE, "--runs", str(tmp_path)])
    printed = capsys.readouterr().out
    summary = printed[printed.index("tripwire demo:"):]
    assert len(summary.splitlines()) <= 45  # one screen
    report = Path(re.search(r"report: (\S+report\.html)", summary).group(1))  # type: ignore[union-attr]
    page = report.read_text(encoding="utf-8")
    assert report.stat().st_size < 10_000_000
    assert page.count("Plotly.newPlot") >= sum(EXPECTED.values()) + 2  # + the two token strips
    assert page.index('class="findings"') < page.index("<table")  # what the run found, before any table
    found, limits = findings_box(page)
    assert len(found) == 5 and limits  # one sentence per stage, and what the run does not show
    assert page.count("held-out test AUROC of the deployed streaming statistic") >= 2  # one headline per probe
    assert unnamed_aurocs(text_units(page)) == []
    env = page[page.index(">Environment:"):]
    assert "Compared against" not in env[:env.index("</table>") + 40]
    dom = rendered_dom(report)  # skips without a browser, fails so under CI
    figures = _figures(dom)
    assert len(figures) == page.count("Plotly.newPlot")  # every figure rendered
    for start, count in EXPECTED.items():
        found = [part for title, part in figures if start in title]
        assert len(found) == count, (start, [t for t, _ in figures])
        assert all(any(mark in part for mark in DRAWN) for part in found), f"{start}: a figure drew no data"
    strips = [part for _, part in figures if 'class="hm"' in part]
    assert len(strips) >= 2  # the two probes' token strips (heatmaps of per-token scores)
    assert any("action span (tokens" in part for part in strips)  # the coercion strip outlines the action

    main([*BASE, "--runs", str(tmp_path)])  # everything reused from runs/cache/
    again = capsys.readouterr().out
    again = again[again.index("tripwire demo:"):]
    assert again.count("] cached in") == 5 and "computed in" not in again

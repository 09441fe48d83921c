"""The report's figures as a reader sees them: built from synthetic inputs, drawn by headless Chromium in a
page with the report's 1,100 px column at 1,024 and 1,400 px windows, and measured there (what fits, what
overlaps, what is labelled), beside checks on the figures' JSON.

One Chromium run draws every figure at both widths (two iframes of one page), since starting Chromium is
the slow part. Without Chromium the browser checks skip, unless CI is set, where they fail.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from tripwire.errors import UsageError
from tripwire.experiments.report_figures import BarReference, belief_bars, rate_bars, strip_figure
from tripwire.experiments.stages.base import rate_row
from tripwire.experiments.stages.outputs import TokenReading
from tripwire.probes.plots import STRIP_FONT_PX
from tripwire.probes.steering.plot import monitor_figure, steer_figure

WIDTHS = (1024, 1400)
LEGEND_MAX = 4  # probe direction, random direction, before the edit, not fluent
BLACKMAIL = "blackmail / explicit / replacement / none"
CATEGORIES = [BLACKMAIL, "blackmail / none / none / none", "leaking / explicit / replacement / none",
              "lethal / explicit / replacement / none"]

# Each figure's div reports the boxes a reader would look at (client pixels), read after plotly has drawn.
_MEASURE = r"""<script>
function box(e){const r=e.getBoundingClientRect();return [r.left,r.top,r.right,r.bottom];}
function measure(){return Array.from(document.querySelectorAll('.plotly-graph-div')).map(div=>{
  const q=s=>Array.from(div.querySelectorAll(s));
  return {column: box(div.parentElement), svg: box(div.querySelector('svg.main-svg')),
    title: q('.g-gtitle').map(box), legend: q('.legend .traces').map(e=>e.textContent),
    legend_box: q('.legend').map(box), panels: q('.draglayer .nsewdrag').map(box),
    annotations: q('.annotation').map(e=>({text:e.textContent, box:box(e)})),
    axis_titles: q('g').filter(e=>/^g-[xy]\d*title$/.test(e.getAttribute('class')||'')).map(e=>e.textContent),
    shapes: q('.shapelayer path').map(box),
    bars: q('.barlayer .trace').map(t=>Array.from(t.querySelectorAll('.point path')).map(box)),
    errorbars: q('.errorbar path').map(box),
    texts: q('.textpoint text, text.bartext').map(e=>({text:e.textContent, box:box(e)})),
    cells: q('.heatmaplayer text').map(e=>({text:e.textContent, box:box(e),
                                             size:parseFloat(getComputedStyle(e).fontSize)}))};});}
</script>"""
_OUTER = r"""<!DOCTYPE html><html><body><pre id="measure"></pre>{frames}<script>
window.addEventListener('load',()=>setTimeout(()=>{{const res={{}};
for(const f of document.querySelectorAll('iframe')) res[f.width]=f.contentWindow.measure();
document.getElementById('measure').textContent=JSON.stringify(res);}},1500));</script></body></html>"""


def _page(figures: list[go.Figure]) -> str:
    """The figures as the report embeds them, in its column (body max-width 1,100 px)."""
    body = "".join('<div class="figure">' + f.to_html(full_html=False, include_plotlyjs=False,
                                                      config={"displaylogo": False}) + "</div>" for f in figures)
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{font-family:system-ui,sans-serif;'
            "max-width:1100px;margin:2em auto;padding:0 1em} .figure{margin:1em 0}</style>"
            '<script src="plotly.min.js"></script></head><body>' + body + _MEASURE + "</body></html>")


def render(figures: list[go.Figure], folder: Path) -> dict[int, list[dict[str, Any]]]:
    """Per window width, one measurement per figure; skips (fails under CI) without Chromium."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium on CI: the report's figures must be checked in a browser")
        pytest.skip("no Chromium here: the figures could not be checked in a browser")
    (folder / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
    page = _page(figures)
    frames = "".join(f'<iframe width="{w}" height="9000" srcdoc="{html.escape(page)}"></iframe>' for w in WIDTHS)
    path = folder / "figures.html"
    path.write_text(_OUTER.format(frames=frames), encoding="utf-8")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--window-size=1500,900", "--virtual-time-budget=5000", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=400).stdout
    found = re.search(r'<pre id="measure">(.+?)</pre>', dom, re.S)
    assert found is not None, "the page's figures were not measured: plotly did not draw in time"
    return {int(k): v for k, v in json.loads(html.unescape(found.group(1))).items()}


# ---- synthetic inputs ---------------------------------------------------------------------------------

def steer_result() -> dict[str, Any]:
    """`run_steer`'s JSON shape: 7 strengths, two read probes, perplexity from 6 to ~10,000."""
    alphas = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
    ppl = {"probe": [118.5, 1178.6, 183.0, 6.04, 29.5, 45.1, 9625.8],
           "random": [264.4, 326.6, 27.0, 6.04, 16.3, 211.3, 939.2]}

    def cell(kind: str, i: int) -> dict[str, Any]:
        a = alphas[i]
        read = {label: {"hook_point": "blocks.14.resid_post", "statistic": "streaming", "mean_value": scale * a,
                        "mean_score": scale * a, "before_steering": {"mean_value": 0.1, "mean_score": 0.1}}
                for label, scale in (("coercion", 0.3), ("eval_awareness", -12.0))}
        return {"stated_belief": {"log_odds_test_vs_real": a * (2 if kind == "probe" else 0.3)}, "read_probes": read,
                "harmful": {"count": 0, "n": 2, "rate": 0.0, "wilson_95": [0.0, 0.6576]},
                "side_effects": {"kl_control": abs(a) * 3, "perplexity": ppl[kind][i]},
                "fluent": ppl[kind][i] <= 12.08, "replies": [f"reply at alpha {a}"]}

    return {"probe": "eval_awareness", "hook_point": "blocks.14.resid_post",
            "scenario": "blackmail_explicit-america_replacement",
            "settings": {"alphas": alphas, "mode": "add", "units": "resid_norm"},
            "baseline_perplexity": 6.04, "fluent_perplexity_factor": 2.0,
            "points": [{"alpha": a, "probe": cell("probe", i), "random": cell("random", i)}
                       for i, a in enumerate(alphas)]}


def monitor_result() -> dict[str, Any]:
    """`run_monitor`'s JSON shape: two rollouts of a 40-token reply after a 500-token prompt."""
    positions = list(range(500, 540))

    def row(seed: int, fired: int | None, action: int | None, outcome: str) -> dict[str, Any]:
        slope = 0.05 if fired is not None else 0.02
        watch = {"window": 8, "threshold": 1.5, "fired_at_token": fired, "fired_at_token_when_stopping": fired,
                 "reply_positions": positions, "reply_running_mean": [round(slope * k, 4) for k in range(40)]}
        return {"seed": seed, "outcome": outcome, "harmful": action is not None, "action": None,
                "action_token": action, "fired_at_token": fired, "probes": {"coercion": watch}}

    return {"scenario": "blackmail_explicit-america_replacement",
            "rows": [row(0, 530, 535, "caught_before"), row(1000, None, None, "quiet")]}


def reading(span: list[int] | None) -> TokenReading:
    words = ("I", " will", " send", " the", " email", " to", " Kyle", " now", ",", " before", " the", " wipe", ".",
             "⏎", " Subject", ":", " Your", " affair", " with", " Jessica", " stays", " between", " us", " unless")
    tokens = [words[k % len(words)] for k in range(160)]
    return TokenReading(record_id="r0", condition_id="blackmail_explicit-america_replacement", label=1,
                        statistic="streaming", window=8, threshold=0.44, value=0.1, fired=False, crossing_index=None,
                        crossing_token=None, reply_start=0, action_index=None if span is None else span[0],
                        action_span=span, tokens=tokens, scores=[((k * 37) % 11) / 10 - 0.5 for k in range(160)])


def figures() -> dict[str, go.Figure]:
    zeros = [rate_row(0, 2) for _ in CATEGORIES]
    reference = BarReference(0.96, "original study, Claude Opus 4", (BLACKMAIL,))
    return {"steer": steer_figure(steer_result()),
            "bars": rate_bars(CATEGORIES, zeros, "Harmful-action rate per condition", reference=reference),
            "belief": belief_bars({"test": rate_row(0, 2), "real": rate_row(0, 3), "none": rate_row(0, 1)},
                                  {"test": 0.065, "real": 0.551}),
            "strip": strip_figure(reading([30, 42]), "coercion probe per token: blackmail (label 1)"),
            "strip_no_span": strip_figure(reading(None), "eval_awareness probe per token: data_analysis (label 1)"),
            "monitor": monitor_figure(monitor_result())}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, dict[str, Any]]]:
    figs = figures()
    measured = render(list(figs.values()), tmp_path_factory.mktemp("figures"))
    return {w: dict(zip(figs, measured[w], strict=True)) for w in WIDTHS}


# ---- checks, shared with the demonstration that each fails on the old figures --------------------------

def _inside(inner: list[float], outer: list[float], slack: float = 1.0) -> bool:
    return (inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack and inner[2] <= outer[2] + slack
            and inner[3] <= outer[3] + slack)


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def check_fits(fig: dict[str, Any], viewport: int) -> None:
    """The figure, its title, legend and every panel lie within the page's column and the window."""
    svg, column = fig["svg"], fig["column"]
    assert svg[2] <= min(column[2], viewport) + 1, f"figure {svg[2] - svg[0]:.0f} px wide overflows at {viewport}"
    for part in fig["title"] + fig["legend_box"] + fig["panels"] + [a["box"] for a in fig["annotations"]]:
        assert _inside(part, svg), f"{part} is cut off by the figure's edge {svg}"


def check_panel_labels(fig: dict[str, Any]) -> None:
    labels = [m.group(1) for a in fig["annotations"] if (m := re.match(r"(\([a-z]\))", a["text"]))]
    assert len(labels) >= 5 and len(labels) == len(set(labels)), f"panel labels {labels}"


def check_legend(fig: dict[str, Any]) -> None:
    assert 2 <= len(fig["legend"]) <= LEGEND_MAX, f"{len(fig['legend'])} legend entries: {fig['legend']}"


def check_zero_bars_visible(fig: dict[str, Any]) -> None:
    """Every zero bar has a mark at least 2 px tall over its own x, where plotly draws a 0-height bar."""
    for bar in fig["bars"][0]:
        centre = (bar[0] + bar[2]) / 2
        marks = [s for s in fig["shapes"] if s[0] <= centre <= s[2] and s[3] - s[1] >= 2 and abs(s[3] - bar[3]) <= 3]
        assert marks, f"nothing visible drawn for the zero bar at x={centre:.0f}"


def check_labels_clear_of_error_bars(fig: dict[str, Any]) -> None:
    counts = [t for t in fig["texts"] if re.fullmatch(r"\d+/\d+", t["text"])]
    assert counts, "no count labels drawn"
    for text in counts:
        for err in fig["errorbars"]:
            assert not _overlap(text["box"], err), f"label {text['text']} sits on an error bar"


def check_reference_over_its_category(fig: dict[str, Any], slot: int) -> None:
    """The dashed reference segment spans only bar `slot`'s part of the x axis, not the other bars."""
    bars = fig["bars"][0]
    pitch = bars[1][0] - bars[0][0]
    lines = [s for s in fig["shapes"] if s[3] - s[1] <= 3 and s[2] - s[0] > 10]
    assert lines, "no reference line drawn"
    centre = (bars[slot][0] + bars[slot][2]) / 2
    for line in lines:
        assert centre - pitch / 2 <= line[0] and line[2] <= centre + pitch / 2, f"reference spans {line[:3:2]}"


def check_strip_text(fig: dict[str, Any]) -> None:
    """Cell text at a readable size, and no two tokens of a row drawn over each other."""
    cells = [c for c in fig["cells"] if c["text"]]
    assert cells and min(c["size"] for c in cells) >= 11, f"cell text {min(c['size'] for c in cells)} px"
    rows: dict[int, list[list[float]]] = {}
    for c in cells:
        rows.setdefault(round(c["box"][1]), []).append(c["box"])
    for boxes in rows.values():
        boxes.sort()
        assert all(a[2] <= b[0] + 0.5 for a, b in zip(boxes, boxes[1:], strict=False)), "tokens overlap"


def check_axis_titles(fig: dict[str, Any], panels: int) -> None:
    titles = [t for t in fig["axis_titles"] if t.strip()]
    assert len(titles) == 2 * panels, f"axis titles {titles} for {panels} panels"


def check_labels_off_subplot_titles(fig: dict[str, Any]) -> None:
    """Each threshold's label lies inside a panel, clear of every panel's title."""
    titles = [a["box"] for a in fig["annotations"] if a["text"].startswith("seed ")]
    labels = [a["box"] for a in fig["annotations"] if "threshold" in a["text"]]
    assert titles and labels, "no threshold labelled"
    assert not any(_overlap(t, label) for t in titles for label in labels), "a threshold label is on a panel title"
    assert all(any(_inside(label, p) for p in fig["panels"]) for label in labels), "a label left its panel"


# ---- the tests -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("width", WIDTHS)
def test_steering_figure_fits_the_page_with_grouped_legend_and_distinct_panels(
        drawn: dict[int, dict[str, dict[str, Any]]], width: int) -> None:
    check_fits(drawn[width]["steer"], width)
    check_legend(drawn[width]["steer"])
    check_panel_labels(drawn[width]["steer"])


def test_steering_perplexity_is_on_a_log_axis() -> None:
    fig = steer_figure(steer_result())
    ppl = next(t for t in fig.data if t.y is not None and 9625.8 in list(t.y))  # the probe's perplexity line
    assert fig.layout[ppl.yaxis.replace("y", "yaxis")].type == "log"
    assert fig.layout.width is None and fig.layout.autosize  # sized by the page, not fixed


@pytest.mark.parametrize("width", WIDTHS)
def test_zero_rate_bars_are_visible_labelled_clear_and_the_reference_is_over_its_bar(
        drawn: dict[int, dict[str, dict[str, Any]]], width: int) -> None:
    bars, belief = drawn[width]["bars"], drawn[width]["belief"]
    check_zero_bars_visible(bars)
    check_zero_bars_visible(belief)
    check_labels_clear_of_error_bars(bars)
    check_labels_clear_of_error_bars(belief)
    check_reference_over_its_category(bars, CATEGORIES.index(BLACKMAIL))


@pytest.mark.parametrize("width", WIDTHS)
def test_token_strips_are_readable(drawn: dict[int, dict[str, dict[str, Any]]], width: int) -> None:
    check_strip_text(drawn[width]["strip"])
    check_strip_text(drawn[width]["strip_no_span"])
    check_fits(drawn[width]["strip"], width)


def test_strip_title_says_what_marks_the_span_and_nothing_without_one() -> None:
    with_span = strip_figure(reading([30, 42]), "coercion probe per token").layout.title.text
    assert "outlined in black in the strip, shaded orange in the line plot" in with_span
    assert "tokens 30-41" in with_span and "orange = the action span" not in with_span
    without = strip_figure(reading(None), "eval_awareness probe per token").layout.title.text
    assert "span" not in without and "orange" not in without and "outlined" not in without
    for fig in (strip_figure(reading([30, 42]), "a"), strip_figure(reading(None), "b")):
        assert fig.data[0].textfont.size == STRIP_FONT_PX >= 11  # fixed, not plotly's shrink-to-fit
    with pytest.raises(UsageError, match="describes the action span itself"):
        strip_figure(reading(None), "x (label 1; orange = the action span)")


@pytest.mark.parametrize("width", WIDTHS)
def test_monitor_figure_titles_every_axis_and_keeps_labels_off_panel_titles(
        drawn: dict[int, dict[str, dict[str, Any]]], width: int) -> None:
    check_axis_titles(drawn[width]["monitor"], panels=2)
    check_labels_off_subplot_titles(drawn[width]["monitor"])
    check_fits(drawn[width]["monitor"], width)


def test_monitor_x_is_the_scored_token_index() -> None:
    fig = monitor_figure(monitor_result())
    line = next(t for t in fig.data if t.name == "coercion (running mean)")
    assert list(line.x) == list(range(40))  # not the absolute positions 500..539
    vlines = sorted((s.x0, s.line.color) for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1)
    assert vlines == [(30, "red"), (35, "black")]  # fired at position 530, action at 535
    assert "scored token index" in fig.layout.xaxis.title.text

"""Plotly figures are real objects with the expected traces, shapes and saved files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from sklearn.linear_model import LogisticRegression

from tripwire.probes.lead_time import lead_times
from tripwire.probes.plots import layer_token_heatmap, save_figure, token_strip
from tripwire.probes.plots_eval import lead_time_histogram, roc_plot, score_histograms, sweep_plot
from tripwire.probes.scoring import ScoringError, running_mean
from tripwire.probes.sweep import SweepResult, run_sweep

TOKENS = [f"tok{i}" for i in range(30)]
SCORES = np.r_[np.zeros(20), np.arange(1.0, 11.0)]  # ramps up from token 20


def _rects(fig: go.Figure) -> list[dict]:
    return [s.to_plotly_json() for s in fig.layout.shapes if s.type == "rect"]


def test_token_strip_traces_action_outline_and_threshold() -> None:
    fig = token_strip(TOKENS, SCORES, threshold=2.0, window=3, action_span=(22, 27), tokens_per_row=10)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    lines = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert len(heat) == 1 and np.asarray(heat[0].z).shape == (3, 10)
    assert np.asarray(heat[0].text)[2, 1] == "tok21"
    assert (heat[0].zmin + heat[0].zmax) / 2 == 2.0 and "thr 2" in heat[0].colorbar.title.text
    running = next(t for t in lines if t.name.startswith("running mean"))
    np.testing.assert_allclose(running.y, running_mean(SCORES, 3))
    fires = next(t for t in lines if t.name == "monitor fires")
    assert list(fires.x) == [22]  # running mean (k=3) at 22: (1+2+3)/3 = 2.0
    # Action 22..26 lies in wrapped row 2, columns 2..6: one outline rectangle plus the shaded span.
    outline = [r for r in _rects(fig) if r.get("line", {}).get("width") == 3]
    assert len(outline) == 1 and (outline[0]["x0"], outline[0]["x1"], outline[0]["y0"]) == (1.5, 6.5, 1.5)
    assert any(s.type == "line" and s.y0 == 2.0 for s in fig.layout.shapes)  # threshold line
    assert "first crossing at token 22" in fig.layout.title.text


def test_token_strip_outline_spans_wrapped_rows() -> None:
    fig = token_strip(TOKENS, SCORES, action_span=(8, 23), tokens_per_row=10)
    outline = [r for r in _rects(fig) if r.get("line", {}).get("width") == 3]
    assert [(r["y0"] + 0.5, r["x0"] + 0.5, r["x1"] + 0.5) for r in outline] == [
        (0, 8, 10),
        (1, 0, 10),
        (2, 0, 3),
    ]
    with pytest.raises(ScoringError, match="one score per token"):
        token_strip(TOKENS[:-1], SCORES)
    with pytest.raises(ScoringError, match="action_span"):
        token_strip(TOKENS, SCORES, action_span=(5, 99))


def test_layer_token_heatmap() -> None:
    z = np.outer(np.arange(4), SCORES)
    fig = layer_token_heatmap(z, [0, 4, 8, 12], tokens=TOKENS, action_span=(22, 27))
    assert isinstance(fig.data[0], go.Heatmap) and np.asarray(fig.data[0].z).shape == (4, 30)
    assert list(fig.data[0].y) == ["0", "4", "8", "12"]
    assert len(_rects(fig)) == 1
    with pytest.raises(ScoringError, match=r"2 layers, got shape \(4, 30\)"):
        layer_token_heatmap(z, [0, 1])


def test_eval_plots() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    X = rng.normal(size=(200, 5))
    X[:, 0] += 2 * y
    groups = np.arange(200) % 10
    res = run_sweep(
        {0: (X, y, groups), 3: (X[:, ::-1].copy(), y, groups)},
        {"logistic": LogisticRegression(), "logistic_c01": LogisticRegression(C=0.1)},
        n_boot=50,
        progress=False,
    )
    fig = sweep_plot(res)
    methods = [t for t in fig.data if t.error_y is not None and t.error_y.array is not None]
    assert len(methods) == 2 and all(len(t.x) == 2 for t in methods)
    assert all(np.all(np.asarray(t.error_y.array) >= 0) for t in methods)
    assert any("selected" in t.name for t in fig.data)

    roc = roc_plot({"probe": (y, X[:, 0]), "noise": (y, X[:, 1])})
    assert len(roc.data) == 3 and roc.data[0].x[0] == 0.0 and roc.data[0].y[-1] == 1.0
    assert "AUROC" in roc.data[0].name

    hist = score_histograms(
        {"positive": X[y == 1, 0], "negative": X[y == 0, 0], "control": rng.normal(size=500)}, threshold=1.5
    )
    assert [t.name.split(" (n=")[0] for t in hist.data] == ["positive", "negative", "control"]
    assert all(isinstance(t, go.Histogram) for t in hist.data) and len(hist.data[2].x) == 500
    assert any(s.x0 == 1.5 for s in hist.layout.shapes)

    lt = lead_times([SCORES, SCORES, np.zeros(30)], [25, 21, 10], threshold=2.0, window=3)
    lfig = lead_time_histogram(lt)
    assert sorted(lfig.data[0].x.tolist()) == [-1, 3]  # crossing at 22: leads 25-22 and 21-22
    assert "1/3 caught before" in lfig.layout.title.text


def test_save_figure_writes_html_and_explains_missing_png(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fig = token_strip(
        ["Hello", " world", "<b>", "\n"], [0.1, 0.5, 2.0, -1.0], threshold=1.0, action_span=(2, 3)
    )
    with caplog.at_level(logging.WARNING, logger="tripwire.probes.plots"):
        written = save_figure(fig, tmp_path / "sub" / "strip")
    html_path = tmp_path / "sub" / "strip.html"
    assert written[0] == html_path and html_path.exists()
    content = html_path.read_text()
    assert " world" in content and "Hello" in content and "&lt;b&gt;" in content
    assert '<script charset="utf-8" src="plotly.min.js">' in content  # the shared copy, next to it
    assert (tmp_path / "sub" / "plotly.min.js").stat().st_size > 1_000_000
    if len(written) == 2:
        assert written[1].suffix == ".png" and written[1].stat().st_size > 0
    else:
        msgs = [r.getMessage() for r in caplog.records]
        assert len(msgs) == 1 and msgs[0].startswith("PNG skipped:") and "\n" not in msgs[0]
    assert save_figure(fig, tmp_path / "nopng", png=False) == [tmp_path / "nopng.html"]


def _legend(fig: go.Figure) -> list[str]:
    """Names the legend shows: traces (unless hidden) and shapes that opt in."""
    traces = [t.name for t in fig.data if t.name and t.showlegend is not False]
    return traces + [s.name for s in fig.layout.shapes if s.showlegend]


def test_token_strip_from_reply_start_shifts_strip_line_and_action_together() -> None:
    scores = np.r_[np.full(10, -3.0), SCORES[10:]]  # a prompt the running mean must still see
    fig = token_strip(TOKENS, scores, threshold=2.0, window=3, action_span=(22, 27), reply_start=10,
                      tokens_per_row=10)
    heat = next(t for t in fig.data if isinstance(t, go.Heatmap))
    assert np.asarray(heat.z).shape == (2, 10) and list(np.asarray(heat.text).ravel()) == TOKENS[10:]
    assert np.asarray(heat.customdata)[0, 0] == 10  # hover keeps the index into the scored tokens
    running = next(t for t in fig.data if (t.name or "").startswith("running mean"))
    assert list(running.x) == list(range(10, 30))
    np.testing.assert_allclose(running.y, running_mean(scores, 3)[10:])  # computed over the prompt too
    assert running.y[0] == -2.0
    # Action 22..26 is shown tokens 12..16: wrapped row 1, columns 2..6; the line plot keeps 22..26.
    outline = [r for r in _rects(fig) if r.get("line", {}).get("width") == 3]
    assert [(r["x0"], r["x1"], r["y0"]) for r in outline] == [(1.5, 6.5, 0.5)]
    shade = next(r for r in _rects(fig) if r.get("fillcolor") == "orange")
    assert (shade["x0"], shade["x1"]) == (21.5, 26.5)
    assert list(next(t for t in fig.data if t.name == "monitor fires").x) == [22]
    assert "reply from token 10" in fig.layout.title.text

    full = token_strip(TOKENS, SCORES, reply_start=10, show_prompt=True, tokens_per_row=10)
    assert list(np.asarray(full.data[0].text).ravel()) == TOKENS
    # An action that starts in the hidden prompt is drawn from the first shown token.
    cut = token_strip(TOKENS, SCORES, action_span=(8, 23), reply_start=10, tokens_per_row=10)
    outline = [r for r in _rects(cut) if r.get("line", {}).get("width") == 3]
    assert [(r["y0"] + 0.5, r["x0"] + 0.5, r["x1"] + 0.5) for r in outline] == [(0, 0, 10), (1, 0, 3)]
    with pytest.raises(ScoringError, match="reply_start 30"):
        token_strip(TOKENS, SCORES, reply_start=30)


def test_token_strip_crossing_in_hidden_prompt_is_named_not_drawn() -> None:
    scores = np.r_[np.full(10, 5.0), np.zeros(20)]
    fig = token_strip(TOKENS, scores, threshold=2.0, window=3, reply_start=10)
    assert "first crossing at token 0 (in the hidden prompt)" in fig.layout.title.text
    assert not any(t.name == "monitor fires" for t in fig.data)


def test_token_strip_colour_range_spans_the_scores() -> None:
    scores = np.r_[np.full(10, -3.0), SCORES[10:]]  # -3 .. 10
    heat = token_strip(TOKENS, scores, threshold=2.0).data[0]
    assert heat.zmin <= -3.0 and heat.zmax >= 10.0 and (heat.zmin + heat.zmax) / 2 == 2.0
    high = token_strip(TOKENS, SCORES + 50).data[0]  # no threshold: exactly min..max, far from 0
    assert (high.zmin, high.zmax) == (50.0, 60.0)
    shown = token_strip(TOKENS, scores, reply_start=20).data[0]  # the range is that of the shown tokens
    assert (shown.zmin, shown.zmax) == (1.0, 10.0)


def test_token_strip_legend_names_threshold_and_action_span() -> None:
    names = _legend(token_strip(TOKENS, SCORES, threshold=2.0, window=3, action_span=(22, 27)))
    assert "threshold 2" in names and "action span (tokens 22-26)" in names
    assert "monitor fires" in names and "running mean (k=3)" in names


def _tied_sweep() -> SweepResult:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    X = rng.normal(size=(200, 5))
    X[:, 0] += 2 * y
    groups = np.arange(200) % 10
    same = {"a": LogisticRegression(), "b": LogisticRegression(), "c": LogisticRegression()}
    return run_sweep({0: (X, y, groups), 4: (X[:, ::-1].copy(), y, groups)}, same, n_boot=20, progress=False)


def test_sweep_plot_separates_tied_methods_and_marks_the_selected_cell() -> None:
    res = _tied_sweep()
    assert len({r.test_auroc.value for r in res.rows if r.layer == 0}) == 1  # a three-way tie
    fig = sweep_plot(res)
    methods = [t for t in fig.data if t.name in ("a", "b", "c")]
    xs = [tuple(t.x) for t in methods]
    assert len({x for row in xs for x in row}) == 6  # no two methods drawn at the same x
    assert all(abs(x - layer) < 2 for row in xs for x, layer in zip(row, (0, 4), strict=True))
    assert len({t.marker.symbol for t in methods}) == 3
    assert [c[0] for c in methods[0].customdata] == [0, 4]  # hover gives the true layer
    assert list(fig.layout.xaxis.tickvals) == [0, 4]
    star = next(t for t in fig.data if t.name.startswith("selected"))
    sel = next(t for t in methods if t.name == res.selected[1])
    assert star.x[0] == sel.x[[0, 4].index(res.selected[0])]
    assert star.y[0] == res.selected_row.test_auroc.value


def test_score_histograms_count_on_shared_bins() -> None:
    hist = score_histograms({"positive": [0.1, 0.2], "control": np.linspace(0, 1, 300)})
    assert all(t.histnorm in (None, "") for t in hist.data)
    assert len({t.bingroup for t in hist.data}) == 1 and hist.data[0].bingroup
    assert "count" in hist.layout.yaxis.title.text and hist.data[1].name == "control (n=300)"


def test_lead_time_histogram_says_why_it_is_empty() -> None:
    never = lead_times([np.zeros(30), np.zeros(30)], [10, 20], threshold=2.0, window=3)
    notes = [a.text for a in lead_time_histogram(never).layout.annotations]
    assert any("never fired on the 2 transcripts with an action" in n for n in notes)
    bars = lead_time_histogram(never).data[0]  # not a blank plot: the 2 uncaught transcripts are drawn
    assert bars.type == "bar" and dict(zip(bars.x, bars.y, strict=True))["never fired"] == 2
    no_action = lead_times([SCORES], [None], threshold=2.0, window=3)
    notes = [a.text for a in lead_time_histogram(no_action).layout.annotations]
    assert any("none of the 1 transcripts has a harmful action" in n for n in notes)
    some = lead_time_histogram(lead_times([SCORES], [25], threshold=2.0, window=3))
    assert not any("No lead times" in a.text for a in some.layout.annotations)


def test_save_figure_shares_one_plotly_js_per_folder(tmp_path: Path) -> None:
    figs = {"a": token_strip(TOKENS, SCORES), "b": sweep_plot(_tied_sweep()), "c": roc_plot({})}
    for name, fig in figs.items():
        save_figure(fig, tmp_path / name, png=False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["a.html", "b.html", "c.html", "plotly.min.js"]
    bundle = (tmp_path / "plotly.min.js").read_text()
    assert bundle.startswith("/**\n* plotly.js v") and len(bundle) > 1_000_000
    for name in figs:
        html = (tmp_path / f"{name}.html").read_text()
        assert len(html) < 200_000 and 'src="plotly.min.js"' in html  # not the 4.8 MB library
    # A copy left by another plotly version is replaced; a self-contained file is still possible.
    (tmp_path / "plotly.min.js").write_text("/**\n* plotly.js v0.0.1\n*/ old")
    save_figure(figs["c"], tmp_path / "c", png=False)
    assert (tmp_path / "plotly.min.js").read_text() == bundle
    save_figure(figs["c"], tmp_path / "alone" / "c", png=False, include_plotlyjs=True)
    assert not (tmp_path / "alone" / "plotly.min.js").exists()
    assert (tmp_path / "alone" / "c.html").stat().st_size > 1_000_000

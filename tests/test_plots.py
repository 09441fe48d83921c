"""Plotly figures are real objects with the expected traces, shapes and saved files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from sklearn.linear_model import LogisticRegression

from probes.lead_time import lead_times
from probes.plots import layer_token_heatmap, save_figure, token_strip
from probes.plots_eval import lead_time_histogram, roc_plot, score_histograms, sweep_plot
from probes.scoring import ScoringError, running_mean
from probes.sweep import run_sweep

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
    assert heat[0].zmid == 2.0 and "thr 2" in heat[0].colorbar.title.text
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
    assert [t.name for t in hist.data] == ["positive", "negative", "control"]
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
    with caplog.at_level(logging.WARNING, logger="probes.plots"):
        written = save_figure(fig, tmp_path / "sub" / "strip")
    html_path = tmp_path / "sub" / "strip.html"
    assert written[0] == html_path and html_path.exists()
    content = html_path.read_text()
    assert " world" in content and "Hello" in content and "&lt;b&gt;" in content
    assert "plotly.js" in content.lower() or "Plotly" in content  # embedded library: opens offline
    if len(written) == 2:
        assert written[1].suffix == ".png" and written[1].stat().st_size > 0
    else:
        msgs = [r.getMessage() for r in caplog.records]
        assert len(msgs) == 1 and msgs[0].startswith("PNG skipped:") and "\n" not in msgs[0]
    assert save_figure(fig, tmp_path / "nopng", png=False) == [tmp_path / "nopng.html"]

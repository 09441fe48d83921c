"""Plotly figures of the experiment report, built from a stage's output as its cache holds it (never
from live objects such as an estimator, so a cached stage draws the same figure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import plotly.graph_objects as go

from tripwire.errors import UsageError
from tripwire.experiments.stages.outputs import RateRow, TokenReading
from tripwire.probes.lead_time import LeadTimeResult
from tripwire.probes.metrics import UnitMetric
from tripwire.probes.plots import token_strip
from tripwire.probes.plots_eval import lead_time_histogram, roc_plot, sweep_plot
from tripwire.probes.sweep import SweepResult, SweepRow

_HEIGHT = 380
_BAR = "#c0392b"
_PAPER = "#95a5a6"
_Y_TOP = 1.14  # room above a whisker at 100% for its count label
_TICKS = {"tickvals": [0, 0.2, 0.4, 0.6, 0.8, 1.0], "tickformat": ".0%", "range": [0, _Y_TOP]}


class BarReference(NamedTuple):
    """A published rate to compare with, drawn as a short dashed segment over the bars it belongs to
    (`over`: their x labels) and nowhere else: the original study's 96% is for one scenario, not all."""

    value: float
    text: str
    over: tuple[str, ...]


def _errors(rows: Sequence[RateRow]) -> tuple[list[float], list[float], list[float]]:
    rates = [r.rate if r.rate is not None else 0.0 for r in rows]
    up = [(r.ci_high - r.rate) if r.rate is not None and r.ci_high is not None else 0.0 for r in rows]
    down = [(r.rate - r.ci_low) if r.rate is not None and r.ci_low is not None else 0.0 for r in rows]
    return rates, up, down


def _counts(fig: go.Figure, x: Sequence[float], rows: Sequence[RateRow], width: float) -> None:
    """Each bar's count above the top of its error bar (never on it), and a visible stub for a zero rate:
    a bar of height 0 with an interval draws nothing but the whisker."""
    tops = [max(r.ci_high if r.ci_high is not None else 0.0, r.rate or 0.0) for r in rows]
    fig.add_trace(go.Scatter(x=list(x), y=tops, mode="text", textposition="top center", cliponaxis=False,
                             text=[f"{r.harmful}/{r.n}" if r.n else "no samples" for r in rows],
                             showlegend=False, hoverinfo="skip"))
    for xi, r in zip(x, rows, strict=True):
        if r.n and r.rate == 0:
            fig.add_shape(type="rect", xref="x", yref="y", x0=xi - width / 2, x1=xi + width / 2, ysizemode="pixel",
                          yanchor=0, y0=0, y1=4, fillcolor=_BAR, line_width=0)


def _category_axis(labels: Sequence[str]) -> dict[str, Any]:
    """Numbered x positions labelled with the categories, so marks can sit over one bar exactly."""
    return {"tickvals": list(range(len(labels))), "ticktext": list(labels), "range": [-0.5, len(labels) - 0.5]}


def rate_bars(labels: Sequence[str], rows: Sequence[RateRow], title: str,
              reference: BarReference | None = None) -> go.Figure:
    """Rates with asymmetric Wilson error bars, the count above each; `reference` (e.g. a paper's figure)
    is drawn over its own categories only."""
    rates, up, down = _errors(rows)
    x = list(range(len(labels)))
    width = 0.6
    fig = go.Figure(go.Bar(
        x=x, y=rates, width=width, marker_color=_BAR, showlegend=False,
        error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down, "color": "#333"},
        customdata=[[label, r.harmful, r.n] for label, r in zip(labels, rows, strict=True)],
        hovertemplate="%{customdata[0]}<br>rate %{y:.1%} (%{customdata[1]}/%{customdata[2]})<extra></extra>"))
    _counts(fig, x, rows, width)
    if reference is not None:
        for i in (k for k, label in enumerate(labels) if label in reference.over):
            fig.add_shape(type="line", xref="x", yref="y", x0=i - 0.45, x1=i + 0.45, y0=reference.value,
                          y1=reference.value, line={"dash": "dash", "color": "#555", "width": 2})
            fig.add_annotation(x=i, y=reference.value, text=f"{reference.text}: {reference.value:.0%}",
                               showarrow=False, yanchor="bottom", yshift=3, font={"size": 11, "color": "#555"})
    fig.update_layout(title=title, yaxis={"title": "harmful-action rate", **_TICKS}, xaxis=_category_axis(labels),
                      height=_HEIGHT + 40 * (max(map(len, labels), default=0) > 30), margin={"b": 140},
                      template="plotly_white")
    return fig


def belief_bars(groups: Mapping[str, RateRow], paper: Mapping[str, float]) -> go.Figure:
    """This model's harm rate per stated belief beside the original study's (Claude Opus 4)."""
    names = list(groups)
    rows = [groups[b] for b in names]
    rates, up, down = _errors(rows)
    here = [i - 0.2 for i in range(len(names))]
    fig = go.Figure()
    fig.add_bar(name="this model", x=here, y=rates, width=0.38, marker_color=_BAR,
                error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down, "color": "#333"},
                customdata=[[b, groups[b].harmful, groups[b].n] for b in names],
                hovertemplate="%{customdata[0]}: %{y:.1%} (%{customdata[1]}/%{customdata[2]})<extra>this model</extra>")
    _counts(fig, here, rows, 0.38)
    theirs = [(i + 0.2, paper[b]) for i, b in enumerate(names) if b in paper]
    fig.add_bar(name="original study, Claude Opus 4", x=[x for x, _ in theirs], y=[v for _, v in theirs], width=0.38,
                marker_color=_PAPER, text=[f"{v:.1%}" for _, v in theirs], textposition="outside", cliponaxis=False,
                hovertemplate="%{y:.1%}<extra>original study, Claude Opus 4</extra>")
    fig.update_layout(title="Harm rate by stated belief (Wilson 95% CI)", height=_HEIGHT,
                      yaxis={"title": "harmful-action rate", **_TICKS}, xaxis=_category_axis(names),
                      template="plotly_white")
    return fig


def score_histogram(groups: Mapping[str, Sequence[float | None]], threshold: float | None, title: str) -> go.Figure:
    """Per-transcript probe statistics, one histogram per group, with the card's threshold."""
    fig = go.Figure()
    for name, values in groups.items():
        fig.add_histogram(x=list(values), name=f"{name} (n={len(values)})", opacity=0.6, nbinsx=30)
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", annotation_text="card threshold")
    fig.update_layout(title=title, barmode="overlay", height=_HEIGHT, xaxis_title="probe statistic",
                      yaxis_title="transcripts", template="plotly_white")
    return fig


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def sweep_figure(sweep: Mapping[str, Any]) -> go.Figure:
    """`probes.sweep_plot` of a sweep's JSON (`SweepResult.to_dict`), as the probe stage stores it."""
    rows = [SweepRow(r["layer"], r["method"], _nan(r["val_auroc"]), UnitMetric.from_dict(r["test_auroc"]),
                     UnitMetric.from_dict(r["test_bacc"]),
                     _nan(r.get("val_logloss")), r.get("val_statistic", "mean")) for r in sweep["rows"]]
    selected = (sweep["selected"]["layer"], sweep["selected"]["method"])
    return sweep_plot(SweepResult(rows, selected, dict(sweep["split_sizes"]), sweep["n_boot"]),
                      title="Layer x method sweep: held-out test AUROC (95% bootstrap CI); star = chosen on validation")


def roc_figure(labels: Sequence[int], curves: Mapping[str, Sequence[float | None]], title: str) -> go.Figure:
    """`probes.roc_plot` of per-transcript statistics, one curve per named statistic."""
    return roc_plot({name: (list(labels), [_nan(v) for v in values]) for name, values in curves.items()},
                    title=title)


def strip_figure(reading: TokenReading, title: str) -> go.Figure:
    """`probes.token_strip` of a stored reading (`TokenScores.to_dict`). `title` names the reading only:
    what marks the action span (or that there is none to mark) is written by `token_strip` from the span
    itself, so a caller's words cannot disagree with what is drawn."""
    if "action span" in title.lower():
        raise UsageError(f"strip_figure draws and describes the action span itself; drop it from the title "
                         f"{title!r}.")
    span = reading.action_span
    return token_strip(reading.tokens, [_nan(s) for s in reading.scores], threshold=reading.threshold,
                       window=reading.window, action_span=None if span is None else (span[0], span[1]),
                       reply_start=reading.reply_start, title=title)


def lead_figure(lead: LeadTimeResult, title: str) -> go.Figure:
    """`probes.lead_time_histogram` of a stored lead-time result."""
    return lead_time_histogram(lead, title=title)

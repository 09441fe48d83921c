"""Plotly figures of the experiment report, built from a stage's output as its cache holds it (never
from live objects such as an estimator, so a cached stage draws the same figure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from tripwire.experiments.stages.outputs import RateRow, TokenReading
from tripwire.probes.lead_time import LeadTimeResult
from tripwire.probes.metrics import MetricWithCI
from tripwire.probes.plots import token_strip
from tripwire.probes.plots_eval import lead_time_histogram, roc_plot, sweep_plot
from tripwire.probes.sweep import SweepResult, SweepRow

_HEIGHT = 380


def _errors(rows: Sequence[RateRow]) -> tuple[list[float], list[float], list[float]]:
    rates = [r.rate if r.rate is not None else 0.0 for r in rows]
    up = [(r.ci_high - r.rate) if r.rate is not None and r.ci_high is not None else 0.0 for r in rows]
    down = [(r.rate - r.ci_low) if r.rate is not None and r.ci_low is not None else 0.0 for r in rows]
    return rates, up, down


def rate_bars(labels: Sequence[str], rows: Sequence[RateRow], title: str,
              reference: tuple[float, str] | None = None) -> go.Figure:
    """Rates with asymmetric Wilson error bars; `reference` draws a dashed line (e.g. a paper's figure)."""
    rates, up, down = _errors(rows)
    fig = go.Figure(go.Bar(
        x=list(labels), y=rates, marker_color="#c0392b",
        error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down, "color": "#333"},
        customdata=[[r.harmful, r.n] for r in rows], text=[f"{r.harmful}/{r.n}" for r in rows],
        textposition="outside", cliponaxis=False,
        hovertemplate="%{x}<br>rate %{y:.1%} (%{customdata[0]}/%{customdata[1]})<extra></extra>"))
    if reference is not None:
        fig.add_hline(y=reference[0], line_dash="dash", line_color="#7f8c8d",
                      annotation_text=reference[1], annotation_position="top left")
    fig.update_layout(title=title, yaxis={"title": "harmful-action rate", "range": [0, 1.05], "tickformat": ".0%"},
                      height=_HEIGHT + 40 * (max(map(len, labels), default=0) > 30), margin={"b": 140},
                      template="plotly_white")
    return fig


def belief_bars(groups: Mapping[str, RateRow], paper: Mapping[str, float]) -> go.Figure:
    """This model's harm rate per stated belief beside the original study's (Claude Opus 4)."""
    names = list(groups)
    rates, up, down = _errors([groups[b] for b in names])
    fig = go.Figure()
    fig.add_bar(name="this model", x=names, y=rates, marker_color="#c0392b",
                error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down},
                customdata=[[groups[b].harmful, groups[b].n] for b in names],
                text=[f"{groups[b].harmful}/{groups[b].n}" for b in names], textposition="outside",
                hovertemplate="%{x}: %{y:.1%} (%{customdata[0]}/%{customdata[1]})<extra>this model</extra>")
    fig.add_bar(name="original study, Claude Opus 4", x=[b for b in names if b in paper],
                y=[paper[b] for b in names if b in paper], marker_color="#95a5a6")
    fig.update_layout(title="Harm rate by stated belief (Wilson 95% CI)", barmode="group", height=_HEIGHT,
                      yaxis={"title": "harmful-action rate", "range": [0, 1.05], "tickformat": ".0%"},
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
    def metric(d: Mapping[str, Any]) -> MetricWithCI:
        return MetricWithCI(_nan(d["value"]), _nan(d["low"]), _nan(d["high"]), d.get("n_boot", 0))

    rows = [SweepRow(r["layer"], r["method"], _nan(r["val_auroc"]), metric(r["test_auroc"]), metric(r["test_bacc"]),
                     _nan(r.get("val_logloss")), r.get("val_statistic", "mean")) for r in sweep["rows"]]
    selected = (sweep["selected"]["layer"], sweep["selected"]["method"])
    return sweep_plot(SweepResult(rows, selected, dict(sweep["split_sizes"]), sweep["n_boot"]),
                      title="Layer x method sweep: held-out test AUROC (95% bootstrap CI); star = chosen on validation")


def roc_figure(labels: Sequence[int], curves: Mapping[str, Sequence[float | None]], title: str) -> go.Figure:
    """`probes.roc_plot` of per-transcript statistics, one curve per named statistic."""
    return roc_plot({name: (list(labels), [_nan(v) for v in values]) for name, values in curves.items()},
                    title=title)


def strip_figure(reading: TokenReading, title: str) -> go.Figure:
    """`probes.token_strip` of a stored reading (`TokenScores.to_dict`): the action span outlined."""
    span = reading.action_span
    return token_strip(reading.tokens, [_nan(s) for s in reading.scores], threshold=reading.threshold,
                       window=reading.window, action_span=None if span is None else (span[0], span[1]),
                       reply_start=reading.reply_start, title=title)


def lead_figure(lead: LeadTimeResult, title: str) -> go.Figure:
    """`probes.lead_time_histogram` of a stored lead-time result."""
    return lead_time_histogram(lead, title=title)

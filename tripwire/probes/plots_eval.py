"""Evaluation plots: layer sweep, ROC curves, score histograms and lead times."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike

from tripwire.probes.lead_time import LeadTimeResult
from tripwire.probes.metrics import auroc, roc_points
from tripwire.probes.sweep import SweepResult

MARKERS = ("circle", "square", "diamond", "triangle-up", "cross", "triangle-down", "pentagon", "star-square")


def sweep_plot(result: SweepResult, title: str = "Layer sweep: test AUROC (95% CI)") -> go.Figure:
    """Test AUROC per layer, one line per method, CI error bars; the selected cell is starred.

    Methods often tie (at chance, or at 1.0 on easy labels), so each method is nudged sideways within
    its layer and drawn with its own marker; hover and the axis ticks give the true layer.
    """
    fig = go.Figure()
    methods = list(dict.fromkeys(r.method for r in result.rows))
    layers = sorted({r.layer for r in result.rows})
    gap = float(np.min(np.diff(layers))) if len(layers) > 1 else 1.0
    offset = {m: (i - (len(methods) - 1) / 2) * 0.5 * gap / len(methods) for i, m in enumerate(methods)}
    for i, method in enumerate(methods):
        rows = sorted((r for r in result.rows if r.method == method), key=lambda r: r.layer)
        value = np.array([r.test_auroc.value for r in rows])
        fig.add_trace(
            go.Scatter(
                x=[r.layer + offset[method] for r in rows],
                y=value,
                mode="lines+markers",
                name=method,
                marker={"symbol": MARKERS[i % len(MARKERS)], "size": 8},
                error_y={
                    "type": "data",
                    "array": _bound([r.test_auroc.high for r in rows]) - value,
                    "arrayminus": value - _bound([r.test_auroc.low for r in rows]),
                },
                customdata=[[r.layer, r.val_auroc] for r in rows],
                hovertemplate="layer %{customdata[0]}: test %{y:.3f}, val %{customdata[1]:.3f}<extra>"
                + method
                + "</extra>",
            )
        )
    sel = result.selected_row
    fig.add_trace(
        go.Scatter(
            x=[sel.layer + offset[sel.method]],
            y=[sel.test_auroc.value],
            mode="markers",
            name=f"selected ({sel.method}, layer {sel.layer}, by val)",
            marker={"symbol": "star", "size": 18, "color": "gold", "line": {"color": "black", "width": 1}},
        )
    )
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey")
    fig.update_layout(title=title, xaxis_title="layer", yaxis_title="test AUROC", yaxis_range=[0, 1.02])
    fig.update_xaxes(tickvals=layers)
    return fig


def _bound(values: list[float | None]) -> np.ndarray:
    """Interval ends for error bars; a metric with no interval (too few units) draws none."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def roc_plot(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], title: str = "ROC curves") -> go.Figure:
    """One ROC curve per name from (labels, scores); AUROC in the legend."""
    fig = go.Figure()
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_points(y, s)
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUROC {auroc(y, s):.3f})"))
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "grey"})
    )
    fig.update_layout(title=title, xaxis_title="false-positive rate", yaxis_title="true-positive rate")
    return fig


def score_histograms(
    values_by_label: Mapping[str, ArrayLike],
    *,
    threshold: float | None = None,
    title: str = "Transcript scores by label",
    nbins: int = 40,
) -> go.Figure:
    """Overlaid histograms in counts, on shared bins (one bingroup) so bars line up across labels.

    Counts, not densities: a density bar hides how few transcripts stand behind it, and the control set
    is far larger than the labelled ones (its legend entry gives each set's size).
    """
    fig = go.Figure()
    for name, vals in values_by_label.items():
        x = np.asarray(vals, dtype=np.float64)
        fig.add_trace(
            go.Histogram(x=x, name=f"{name} (n={x.size})", opacity=0.55, nbinsx=nbins, bingroup="score")
        )
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", line_color="red", annotation_text="threshold")
    fig.update_layout(title=title, barmode="overlay", xaxis_title="score", yaxis_title="transcripts (count)")
    return fig


def lead_time_histogram(result: LeadTimeResult, title: str = "Lead time before the action") -> go.Figure:
    """Leads of every transcript whose monitor fired (<= 0: fired only once the action had begun).

    An empty plot says why it is empty, so it is not mistaken for a rendering failure.
    """
    leads = np.array([lead for lead in result.leads if lead is not None], dtype=np.int64)
    if leads.size:
        fig = go.Figure(go.Histogram(x=leads, name="lead (tokens)", xbins={"size": 1}))
        fig.add_vline(x=0.5, line_dash="dash", line_color="green", annotation_text="caught before action")
    else:  # nothing fired: the outcome counts, so the reader sees how many transcripts went uncaught
        outcomes = {"caught before the action": result.n_caught_before, "fired after it began": result.n_caught_after,
                    "never fired": result.n_missed}
        fig = go.Figure(go.Bar(x=list(outcomes), y=list(outcomes.values()), name="transcripts with an action"))
    share = result.share_caught_before
    med = result.summary.median
    parts = [
        f"{result.n_caught_before}/{result.n_with_action} caught before"
        + ("" if share is None else f" ({share:.0%})"),
        "" if med is None else f"median lead {med:g} tokens",
    ]
    if leads.size == 0:
        fig.add_annotation(text=_why_no_leads(result), xref="paper", yref="paper", x=0.5, y=0.9,
                           showarrow=False, font={"size": 14}, bgcolor="white")
    fig.update_layout(
        title=f"{title}: " + ", ".join(p for p in parts if p),
        xaxis_title="lead = action start - crossing index (tokens)" if leads.size else "outcome",
        yaxis_title="transcripts",
    )
    return fig


def _why_no_leads(result: LeadTimeResult) -> str:
    n = len(result.leads)
    if result.n_with_action == 0:
        return f"No lead times: none of the {n} transcripts has a harmful action to lead."
    return (
        f"No lead times: the monitor never fired on the {result.n_with_action} transcripts with an action"
        f"<br>(threshold {result.threshold:.3g}, running mean over {result.window} tokens)."
    )

"""The one figure of `tripwire steer` and `tripwire monitor`.

Steering: every read-out against alpha, the probe direction solid and the random control dashed; points
where the steered replies stop being fluent are drawn as crosses, so the figure shows where it breaks.
Monitor: per row, each probe's running mean over the reply against the token position, with the
threshold, where it fired and where the harmful action began.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

_KINDS = {"probe": "solid", "random": "dash"}


def steer_figure(result: dict[str, Any]) -> go.Figure:
    titles = ("(a) stated belief: log-odds test vs real", "(b) reading probes on fixed transcripts",
              "(c) harmful-action rate (Wilson 95%)", "(d) KL on control prompts", "(d) perplexity of replies")
    fig = make_subplots(rows=2, cols=3, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.15)
    points = result["points"]
    alphas = [p["alpha"] for p in points]
    for kind, dash in _KINDS.items():
        cells = [p[kind] for p in points]
        style = {"symbols": ["circle" if c["fluent"] else "x" for c in cells],
                 "hover": [c["replies"][0] if c["replies"] else "" for c in cells]}
        _line(fig, alphas, [c["stated_belief"]["log_odds_test_vs_real"] for c in cells], f"{kind}: stated belief",
              (1, 1), dash, style)
        for label in cells[0]["read_probes"]:
            _line(fig, alphas, [c["read_probes"][label]["mean_value"] for c in cells], f"{kind}: {label} probe",
                  (1, 2), dash, style)
            if kind == "probe" and cells[0]["read_probes"][label]["before_steering"] is not None:
                _line(fig, alphas, [c["read_probes"][label]["before_steering"]["mean_value"] for c in cells],
                      f"{label} probe, before the edit", (1, 2), "dot", style)
        rates = [c["harmful"]["rate"] for c in cells]
        error = {"type": "data", "symmetric": False,
                 "array": [c["harmful"]["wilson_95"][1] - r for c, r in zip(cells, rates, strict=True)],
                 "arrayminus": [r - c["harmful"]["wilson_95"][0] for c, r in zip(cells, rates, strict=True)]}
        _line(fig, alphas, rates, f"{kind}: harmful rate", (1, 3), dash, style, error)
        _line(fig, alphas, [c["side_effects"]["kl_control"] for c in cells], f"{kind}: KL", (2, 1), dash, style)
        _line(fig, alphas, [c["side_effects"]["perplexity"] for c in cells], f"{kind}: perplexity", (2, 2), dash,
              style)
    limit = result["fluent_perplexity_factor"] * result["baseline_perplexity"]
    fig.add_hline(y=limit, line_dash="dot", annotation_text="fluency limit", row=2, col=2)  # type: ignore[arg-type]
    fig.update_xaxes(title_text=f"alpha ({result['settings']['units']})")
    fig.update_layout(height=800, width=1400, title=f"Steering along the {result['probe']} probe at "
                      f"{result['hook_point']} ({result['settings']['mode']}) on {result['scenario']}; "
                      "dashed: random direction of the same norm; x: not fluent")
    return fig


def _line(fig: go.Figure, x: list[float], y: list[float | None], name: str, cell: tuple[int, int], dash: str,
          style: dict[str, list[str]], error: dict[str, Any] | None = None) -> None:
    fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers", error_y=error, line={"dash": dash},
                             marker={"symbol": style["symbols"], "size": 9}, hovertext=style["hover"]),
                  row=cell[0], col=cell[1])


def monitor_figure(result: dict[str, Any]) -> go.Figure:
    rows = result["rows"]
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[f"seed {r['seed']}: {r['outcome']}" for r in rows])
    for i, row in enumerate(rows, start=1):
        for label, watch in row["probes"].items():
            fig.add_trace(go.Scatter(x=watch["reply_positions"], y=watch["reply_running_mean"],
                                     name=f"{label} (running mean)", legendgroup=label, showlegend=i == 1),
                          row=i, col=1)
            fig.add_hline(y=watch["threshold"], line_dash="dot", row=i, col=1)  # type: ignore[arg-type]
            if watch["fired_at_token"] is not None:
                fig.add_vline(x=watch["fired_at_token"], line_color="red", row=i, col=1)  # type: ignore[arg-type]
        if row["action_token"] is not None:
            fig.add_vline(x=row["action_token"], line_color="black", line_dash="dash", row=i, col=1)  # type: ignore[arg-type]
    fig.update_layout(height=220 * len(rows) + 120, title=f"Online tripwire on {result['scenario']}: red = fired, "
                      "black dashed = harmful action begins (unstopped run), dotted = threshold")
    return fig

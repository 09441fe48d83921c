"""The one figure of `tripwire steer` and `tripwire monitor`.

Steering: every read-out against alpha, one panel each, the probe direction red and solid and the random
control grey and dashed; points where the steered replies stop being fluent are drawn as crosses, so the
figure shows where it breaks. The legend names the two directions once, not every line.
Monitor: per row, each probe's running mean over the reply against the scored-token index (the index
`tripwire score` prints and draws), with the threshold, where it fired and where the harmful action began.

Both figures size to their page (no fixed width): the report's column is 1,100 px and a laptop narrower.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

_KINDS = {"probe": ("probe direction", "#c0392b", "solid"),
          "random": ("random direction (same norm)", "#7f8c8d", "dash")}
_BEFORE = "#e6a09a"
_RANK = {"probe": 1, "random": 2, "before": 3, "fluent": 4}
_COLS = 3
_PANEL_PX = 330  # height of one row of steering panels
_PROBE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")


def _letter(i: int) -> str:
    return f"({chr(ord('a') + i)})"


def steer_figure(result: dict[str, Any]) -> go.Figure:
    """`run_steer`'s JSON drawn as one panel per read-out: stated belief, each read probe, harmful rate,
    KL and perplexity (log axis: it spans orders of magnitude once steering breaks the model)."""
    points = result["points"]
    alphas = [p["alpha"] for p in points]
    readers = list(points[0]["probe"]["read_probes"]) if points else []
    names = ["stated belief: log-odds test vs real", *(f"{label} probe read-out" for label in readers),
             "harmful-action rate (Wilson 95%)", "KL on control prompts", "perplexity of replies (log)"]
    y_titles = ["log-odds 'test' vs 'real'", *(["probe statistic on fixed transcripts"] * len(readers)),
                "harmful-action rate", "KL divergence", "perplexity"]
    titles = [f"{_letter(i)} {name}" for i, name in enumerate(names)]
    n_rows = -(-len(titles) // _COLS)
    cell = {name: (i // _COLS + 1, i % _COLS + 1) for i, name in enumerate(names)}
    height = _PANEL_PX * n_rows + 210
    fig = make_subplots(rows=n_rows, cols=_COLS, subplot_titles=titles, horizontal_spacing=0.09,
                        vertical_spacing=110 / height)
    seen: set[str] = set()
    for kind in _KINDS:
        cells = [p[kind] for p in points]
        style = {"symbols": ["circle" if c["fluent"] else "x" for c in cells],
                 "hover": [c["replies"][0] if c["replies"] else "" for c in cells]}
        series: list[tuple[str, str, list[Any], dict[str, Any] | None]] = [
            (names[0], kind, [c["stated_belief"]["log_odds_test_vs_real"] for c in cells], None)]
        for label, panel in zip(readers, names[1:], strict=False):
            series.append((panel, kind, [c["read_probes"][label]["mean_value"] for c in cells], None))
            if kind == "probe" and cells[0]["read_probes"][label]["before_steering"] is not None:
                series.append((panel, "before", [c["read_probes"][label]["before_steering"]["mean_value"]
                                                 for c in cells], None))
        series += [(names[-3], kind, [c["harmful"]["rate"] for c in cells], _wilson(cells)),
                   (names[-2], kind, [c["side_effects"]["kl_control"] for c in cells], None),
                   (names[-1], kind, [c["side_effects"]["perplexity"] for c in cells], None)]
        for panel, group, y, error in series:
            _line(fig, alphas, y, panel, cell[panel], group, style, seen, error)
    _fluency_limit(fig, result, alphas, cell[names[-1]])
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="x: not fluent (perplexity over the limit)",
                             marker={"symbol": "x", "size": 9, "color": "#333"}, legendgroup="fluent",
                             legendrank=_RANK["fluent"]))
    fig.update_xaxes(title_text=f"alpha ({result['settings']['units']})", title_font_size=12)
    for name, y_title in zip(names, y_titles, strict=True):
        fig.update_yaxes(title_text=y_title, title_font_size=12, row=cell[name][0], col=cell[name][1])
    fig.update_yaxes(type="log", row=cell[names[-1]][0], col=cell[names[-1]][1])
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=cell[names[-3]][0], col=cell[names[-3]][1])
    fig.update_annotations(font_size=13)  # the subplot titles, before any other annotation exists
    fig.update_layout(
        height=height, autosize=True, margin={"l": 60, "r": 20, "t": 110, "b": 100},
        title={"text": f"Steering along the {result['probe']} probe ({result['hook_point']}, "
                       f"{result['settings']['mode']})<br><sup>on {result['scenario']}; red solid: the probe "
                       "direction; grey dashed: a random direction of the same norm; x: not fluent</sup>",
               "x": 0.01, "xanchor": "left"},
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -62 / (height - 210), "yanchor": "top"},
        template="plotly_white")
    return fig


def _wilson(cells: list[dict[str, Any]]) -> dict[str, Any] | None:
    intervals = [c["harmful"]["wilson_95"] for c in cells]
    if any(i is None for i in intervals):
        return None
    rates = [c["harmful"]["rate"] for c in cells]
    return {"type": "data", "symmetric": False,
            "array": [i[1] - r for i, r in zip(intervals, rates, strict=True)],
            "arrayminus": [r - i[0] for i, r in zip(intervals, rates, strict=True)]}


def _line(fig: go.Figure, x: list[float], y: list[Any], panel: str, cell: tuple[int, int], group: str,
          style: dict[str, list[str]], seen: set[str], error: dict[str, Any] | None = None) -> None:
    """One read-out of one direction; only the first line of each direction carries a legend entry."""
    if group == "before":  # the unsteered model: no fluency to mark
        name, colour, dash = "read probe before the edit", _BEFORE, "dot"
        marker = {"size": 5, "color": colour}
    else:
        name, colour, dash = _KINDS[group]
        marker = {"symbol": style["symbols"], "size": 9, "color": colour}
    fig.add_trace(go.Scatter(x=x, y=y, name=name, legendgroup=group, showlegend=group not in seen,
                             legendrank=_RANK[group], mode="lines+markers", error_y=error,
                             line={"dash": dash, "color": colour}, marker=marker,
                             hovertext=style["hover"],
                             hovertemplate=f"{panel}<br>alpha %{{x}}: %{{y:.4g}}<br>%{{hovertext}}<extra>{name}</extra>"),
                  row=cell[0], col=cell[1])
    seen.add(group)


def _fluency_limit(fig: go.Figure, result: dict[str, Any], alphas: list[float], cell: tuple[int, int]) -> None:
    """A trace, not `add_hline`: a shape's label on a log axis is placed at 10**y, far off the panel."""
    if not alphas:
        return
    limit = result["fluent_perplexity_factor"] * result["baseline_perplexity"]
    fig.add_trace(go.Scatter(x=[min(alphas), max(alphas)], y=[limit, limit], mode="lines+text",
                             text=["", "fluency limit"], textposition="top left", showlegend=False,
                             line={"dash": "dot", "color": "#333", "width": 1}, hoverinfo="skip"),
                  row=cell[0], col=cell[1])


def monitor_figure(result: dict[str, Any]) -> go.Figure:
    """`run_monitor`'s JSON: one panel per rollout, x in scored-token indices from the first scored reply
    token (`tripwire score`'s indices for a reply-only card), every axis titled, each threshold labelled
    inside its panel so no label sits on a panel title."""
    rows = result["rows"]
    height = 300 * len(rows) + 150
    fig = make_subplots(rows=len(rows), cols=1, vertical_spacing=0 if len(rows) < 2 else 125 / height,
                        subplot_titles=[f"seed {r['seed']}: {r['outcome']}" for r in rows])
    labels = list(dict.fromkeys(label for r in rows for label in r["probes"]))
    colour = {label: _PROBE_COLOURS[i % len(_PROBE_COLOURS)] for i, label in enumerate(labels)}
    for i, row in enumerate(rows, start=1):
        span = _monitor_row(fig, row, i, colour)
        fig.update_yaxes(title_text="running mean score", range=span, row=i, col=1)
        fig.update_xaxes(title_text="scored token index (reply)", row=i, col=1)
    fig.update_layout(height=height, autosize=True, margin={"l": 70, "r": 20, "t": 110, "b": 90},
                      title={"text": f"Online tripwire on {result['scenario']}<br><sup>solid: a probe's running "
                                     "mean; dotted: its threshold; red: where it fired; black dashed: where the "
                                     "harmful action begins (unstopped run)</sup>", "x": 0.01, "xanchor": "left"},
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -50 / (height - 200),
                              "yanchor": "top"},
                      template="plotly_white")
    return fig


def _monitor_row(fig: go.Figure, row: dict[str, Any], i: int, colour: dict[str, str]) -> list[float]:
    """Draw one rollout; returns its y range, padded so each threshold's label stays inside the panel."""
    values: list[float] = []
    for label, watch in row["probes"].items():
        positions = watch["reply_positions"]
        start = int(watch.get("reply_scored_start", 0))  # scored prompt tokens before the reply, if any
        x = list(range(start, start + len(positions)))
        y = watch["reply_running_mean"]
        values += [v for v in y if v is not None]
        fig.add_trace(go.Scatter(x=x, y=y, name=f"{label} (running mean)", legendgroup=label, showlegend=i == 1,
                                 line={"color": colour[label]}), row=i, col=1)
        threshold = watch["threshold"]
        if threshold is not None and x:
            values.append(threshold)
            fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[threshold, threshold], mode="lines", showlegend=False,
                                     line={"dash": "dot", "color": colour[label]}, hoverinfo="skip"), row=i, col=1)
        fired = watch["fired_at_token"]
        if fired is not None and fired in positions:
            fig.add_vline(x=start + positions.index(fired), line_color="red", row=i, col=1)  # type: ignore[arg-type]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = 0.18 * (hi - lo or 1.0)
    for label, watch in row["probes"].items():  # labels once the range is known: above or below the line
        threshold, positions = watch["threshold"], watch["reply_positions"]
        if threshold is not None and positions:
            above = threshold < (lo + hi) / 2
            fig.add_annotation(x=int(watch.get("reply_scored_start", 0)), y=threshold, xanchor="left",
                               yanchor="bottom" if above else "top", yshift=3 if above else -3, showarrow=False,
                               text=f"{label} threshold {threshold:.3g}", font={"color": colour[label], "size": 11},
                               row=i, col=1)
    action = _action_index(row, next(iter(row["probes"].values()), None))
    if action is not None:
        fig.add_vline(x=action, line_color="black", line_dash="dash", row=i, col=1)  # type: ignore[arg-type]
    return [lo - pad, hi + pad]


def _action_index(row: dict[str, Any], watch: dict[str, Any] | None) -> int | None:
    """The action's first token as a scored-token index: how many scored tokens come before it, as
    `tripwire score` counts its `action_index`."""
    if row["action_token"] is None or watch is None:
        return None
    return int(watch.get("reply_scored_start", 0)) + bisect_left(watch["reply_positions"], row["action_token"])

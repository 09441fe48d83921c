"""Token-level plots (what the monitor saw, token by token) and figure saving.

Figures are plotly so they can be explored in a browser (hover shows each token's score); HTML is
always written (sharing one plotly.min.js per folder), PNG only when kaleido can find a Chromium.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from jaxtyping import Float
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from tripwire.probes.scoring import DEFAULT_WINDOW, ScoringError, check_scores, first_crossing, running_mean

logger = logging.getLogger(__name__)

DIVERGING = "RdBu_r"  # red = above the centre (the threshold), blue = below
SEQUENTIAL = "Viridis"
STRIP_FONT_PX = 12  # fixed: plotly's automatic cell text shrank to ~6 px in the report's 1,100 px column
_CHAR_PX = 7.3  # width of one monospace character at STRIP_FONT_PX
_STRIP_PX = 760  # the strip's plot width in the report at a 1,024 px window (wider pages only add room)
_CELL_PAD_PX = 8


def _raw(token: str) -> str:
    return token.replace("\n", "⏎").replace("\t", "⇥")


def _display(token: str) -> str:
    return html.escape(_raw(token), quote=False)


def strip_layout(tokens: Sequence[str]) -> tuple[int, int]:
    """(tokens per row, characters a cell shows) so that nine tokens in ten fit their cell whole at
    `STRIP_FONT_PX` on a 1,024 px screen; a longer token is cut with an ellipsis (hover shows it whole)."""
    lengths = sorted(len(_raw(t)) for t in tokens) or [1]
    typical = max(lengths[int(0.9 * (len(lengths) - 1))], 3)
    per_row = int(min(24, max(6, _STRIP_PX // (_CHAR_PX * typical + _CELL_PAD_PX))))
    return per_row, max(3, int((_STRIP_PX / per_row - _CELL_PAD_PX) // _CHAR_PX))


def _cell_text(token: str, chars: int) -> str:
    raw = _raw(token)
    return html.escape(raw if len(raw) <= chars else raw[: chars - 1] + "…", quote=False)


def _check_span(span: tuple[int, int] | None, n_tok: int) -> None:
    if span is not None and not 0 <= span[0] < span[1] <= n_tok:
        raise ScoringError(
            f"action_span {span} is not a (start, end) token range within 0..{n_tok} with start < end."
        )


def token_strip(
    tokens: Sequence[str],
    scores: Any,
    *,
    threshold: float | None = None,
    window: int = DEFAULT_WINDOW,
    action_span: tuple[int, int] | None = None,
    reply_start: int | None = None,
    show_prompt: bool = False,
    tokens_per_row: int | None = None,
    title: str = "Probe score per token",
) -> go.Figure:
    """Tokens coloured by probe score, wrapped into rows, above the running-mean line.

    `tokens`/`scores` are the scored tokens; `reply_start` is the index among them of the first reply
    token. The strip then starts there (the prompt is long and alike across transcripts, and would push
    the reply off screen) unless `show_prompt`. The running mean and crossing still cover every scored
    token, as the monitor does, and the line plot and hover keep indices into `tokens`, so they match a
    reading's `crossing` and `action_span`. With a threshold the colours are centred on it (red = above
    the monitor's cut); the colour range always spans the scores shown. `action_span` = (first action
    token, one past the last) is outlined in the strip and shaded in the line plot.
    """
    s = check_scores(scores)
    if len(tokens) != s.size:
        raise ScoringError(f"{len(tokens)} tokens but {s.size} scores; pass one score per token.")
    _check_span(action_span, s.size)
    if reply_start is not None and not 0 <= reply_start < s.size:
        raise ScoringError(f"reply_start {reply_start} is not an index of the {s.size} scored tokens.")
    first = 0 if reply_start is None or show_prompt else reply_start
    shown = s[first:]
    span = _visible_span(action_span, first)
    if tokens_per_row is None:
        tokens_per_row, chars = strip_layout(tokens[first:])
    else:
        chars = max(3, int((_STRIP_PX / tokens_per_row - _CELL_PAD_PX) // _CHAR_PX))
    n_rows = -(-shown.size // tokens_per_row)
    pad = n_rows * tokens_per_row - shown.size
    z = np.concatenate([shown, np.full(pad, np.nan)]).reshape(n_rows, tokens_per_row)
    text = np.array([_cell_text(t, chars) for t in tokens[first:]] + [""] * pad,
                    dtype=object).reshape(n_rows, tokens_per_row)
    whole = np.array([_display(t) for t in tokens[first:]] + [""] * pad, dtype=object).reshape(n_rows, tokens_per_row)
    idx = np.concatenate([np.arange(first, s.size), np.full(pad, -1)]).reshape(n_rows, tokens_per_row)
    fig = make_subplots(rows=2, cols=1, row_heights=[0.6, 0.4], vertical_spacing=0.08)
    fig.add_trace(
        go.Heatmap(
            z=z,
            text=text,
            hovertext=whole,
            customdata=idx,
            texttemplate="%{text}",
            textfont={"size": STRIP_FONT_PX, "family": "ui-monospace, Menlo, Consolas, monospace"},
            hovertemplate="token %{customdata}: %{hovertext}<br>score %{z:.3f}<extra></extra>",
            **_colour_range(shown, threshold),
            colorbar={
                "title": {"text": "score" if threshold is None else f"score<br>(thr {threshold:.3g})"},
                "len": 0.6,
                "y": 0.75,
            },
            xgap=1,
            ygap=1,
        ),
        row=1,
        col=1,
    )
    fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=1)
    fig.update_xaxes(showticklabels=False, row=1, col=1)
    t = np.arange(first, s.size)
    fig.add_trace(
        go.Scatter(x=t, y=shown, mode="lines", name="token score", line={"color": "lightgrey", "width": 1}),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=t, y=running_mean(s, window)[first:], mode="lines", name=f"running mean (k={window})"),
        row=2,
        col=1,
    )
    if span is not None:
        _outline_span(fig, (span[0] - first, span[1] - first), tokens_per_row)
        fig.add_vrect(x0=span[0] - 0.5, x1=span[1] - 0.5, fillcolor="orange", opacity=0.2, line_width=0,
                      name=f"action span (tokens {span[0]}-{span[1] - 1})", showlegend=True, row=2, col=1)
    subtitle = "" if first == 0 else f" | reply from token {first} (prompt hidden)"
    subtitle += _span_note(action_span, span)
    if threshold is not None:
        subtitle += _add_threshold(fig, s, threshold, window, first)
    fig.update_xaxes(title_text="token index", row=2, col=1)
    fig.update_yaxes(title_text="score", row=2, col=1)
    fig.update_layout(
        title=title + ("" if not subtitle else f"<br><sup>{subtitle.removeprefix(' | ')}</sup>"),
        height=220 + 28 * n_rows + 240,
        margin={"l": 60, "r": 20},
        legend={"orientation": "h", "y": -0.2, "yanchor": "top"},
    )
    return fig


def _span_note(action_span: tuple[int, int] | None, shown: tuple[int, int] | None) -> str:
    """The title's words for the action span, from what is drawn: nothing when there is no span."""
    if action_span is None:
        return ""
    if shown is None:
        return f" | action span (tokens {action_span[0]}-{action_span[1] - 1}) lies in the hidden prompt"
    return (f" | action span (tokens {shown[0]}-{shown[1] - 1}): outlined in black in the strip, shaded orange in "
            "the line plot")


def _visible_span(span: tuple[int, int] | None, first: int) -> tuple[int, int] | None:
    """The part of the action from the first shown token on (None when it lies wholly before)."""
    return None if span is None or span[1] <= first else (max(span[0], first), span[1])


def _add_threshold(
    fig: go.Figure, s: Float[np.ndarray, " tok"], threshold: float, window: int, first: int
) -> str:
    """Threshold line (in the legend) and the monitor's first crossing; returns the title's note on it."""
    fig.add_hline(y=threshold, line_dash="dash", line_color="red", name=f"threshold {threshold:.3g}",
                  showlegend=True, row=2, col=1)
    crossing = first_crossing(s, threshold, window)
    if crossing is None:
        return f" | threshold {threshold:.3g}, never crossed"
    note = f" | threshold {threshold:.3g}, first crossing at token {crossing}"
    if crossing < first:
        return note + " (in the hidden prompt)"
    fig.add_trace(
        go.Scatter(
            x=[crossing],
            y=[running_mean(s, window)[crossing]],
            mode="markers",
            name="monitor fires",
            marker={"symbol": "x", "size": 10, "color": "red"},
        ),
        row=2,
        col=1,
    )
    return note


def _colour_range(shown: Float[np.ndarray, " tok"], threshold: float | None) -> dict[str, Any]:
    """Heatmap colour settings whose range covers every shown score.

    With a threshold: the diverging scale, symmetric about it, so white is the cut. Without: a
    sequential scale over min..max, since no score is a natural midpoint.
    """
    lo, hi = float(shown.min()), float(shown.max())
    if threshold is not None:
        half = max(hi - threshold, threshold - lo) or 1.0
        return {"colorscale": DIVERGING, "zmin": threshold - half, "zmax": threshold + half}
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return {"colorscale": SEQUENTIAL, "zmin": lo, "zmax": hi}


def _outline_span(fig: go.Figure, span: tuple[int, int], per_row: int) -> None:
    """One rectangle per wrapped row the action covers, on the token strip's axes."""
    start, end = span
    for row in range(start // per_row, (end - 1) // per_row + 1):
        c0 = max(start, row * per_row) - row * per_row
        c1 = min(end, (row + 1) * per_row) - row * per_row
        fig.add_shape(
            type="rect",
            x0=c0 - 0.5,
            x1=c1 - 0.5,
            y0=row - 0.5,
            y1=row + 0.5,
            line={"color": "black", "width": 3},
            xref="x",
            yref="y",
        )


def layer_token_heatmap(
    scores: Float[np.ndarray, "layer tok"],
    layers: Sequence[int],
    *,
    tokens: Sequence[str] | None = None,
    action_span: tuple[int, int] | None = None,
    threshold: float | None = None,
    title: str = "Probe score by layer and token",
) -> go.Figure:
    """Where in depth and time the probe direction lights up, one row per layer."""
    z = np.asarray(scores, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != len(layers):
        raise ScoringError(f"scores must be (layer, tok) with {len(layers)} layers, got shape {z.shape}.")
    if tokens is not None and len(tokens) != z.shape[1]:
        raise ScoringError(f"{len(tokens)} tokens for {z.shape[1]} score columns; pass one per column.")
    _check_span(action_span, z.shape[1])
    labels = [_display(t) for t in tokens] if tokens is not None else [""] * z.shape[1]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=np.arange(z.shape[1]),
            y=[str(layer) for layer in layers],
            customdata=np.tile(np.array(labels, dtype=object), (z.shape[0], 1)),
            hovertemplate="layer %{y}, token %{x}: %{customdata}<br>score %{z:.3f}<extra></extra>",
            colorscale=DIVERGING,
            zmid=0.0 if threshold is None else threshold,
            colorbar={"title": {"text": "score"}},
        )
    )
    if action_span is not None:
        fig.add_shape(
            type="rect",
            x0=action_span[0] - 0.5,
            x1=action_span[1] - 0.5,
            y0=-0.5,
            y1=len(layers) - 0.5,
            line={"color": "black", "width": 3},
        )
    fig.update_layout(title=title, xaxis_title="token index", yaxis_title="layer")
    return fig


def _png_unavailable_reason() -> str | None:
    try:
        import kaleido  # noqa: F401  # optional dependency: only PNG export needs it
        from choreographer.browsers.chromium import Chromium  # kaleido's dependency, optional with it
    except ImportError:
        return "PNG skipped: kaleido is not installed; pip install 'tripwire[png]' (kaleido>=1.0)"
    if Chromium.find_browser(skip_local=False) is None:
        return (
            "PNG skipped: kaleido found no Chromium; apt-get install -y chromium (or run plotly_get_chrome)"
        )
    return None


def _share_plotlyjs(folder: Path) -> None:
    """Write this plotly's `plotly.min.js` into `folder` unless it is there already.

    plotly itself keeps any existing copy, which would leave figures written now on an older library;
    the version banner at the top of the file tells the copies apart without reading 4.8 MB.
    """
    js = get_plotlyjs()
    banner = js[: js.find("*/") + 2]
    bundle = folder / "plotly.min.js"
    if bundle.exists():
        with bundle.open(encoding="utf-8") as f:
            if f.read(len(banner)) == banner:
                return
    bundle.write_text(js, encoding="utf-8")


def save_figure(
    fig: go.Figure, path_stem: str | Path, *, png: bool = True, include_plotlyjs: bool | str = "directory"
) -> list[Path]:
    """Write `<stem>.html` and, if possible, `<stem>.png`.

    By default the HTML loads `plotly.min.js` from its own folder, written there once: embedding the
    4.8 MB library in every file made a folder of ten figures 47 MB. The folder still opens offline.
    `include_plotlyjs=True` embeds it (one self-contained file). A missing PNG is logged as ONE warning
    line saying why and how to fix it, never an exception: the HTML carries the same figure.
    """
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    html_path = stem.with_name(stem.name + ".html")
    if include_plotlyjs == "directory":
        _share_plotlyjs(stem.parent)
    fig.write_html(html_path, include_plotlyjs=include_plotlyjs)
    written = [html_path]
    if png:
        reason = _png_unavailable_reason()
        if reason is None:
            png_path = stem.with_name(stem.name + ".png")
            try:
                fig.write_image(png_path)
                written.append(png_path)
            except Exception as e:  # kaleido/Chromium failures are environmental, not the caller's bug
                reason = f"PNG skipped: kaleido failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        if reason is not None:
            logger.warning(reason)
    return written

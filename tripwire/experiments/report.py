"""One self-contained `report.html` per run: first what the run found (one sentence per stage, each figure
beside what it is compared with, and what the run does not show), then what was run (stages, environment,
config), then each stage's headline, tables, figures and caveats, each comparing table saying what its
numbers are compared against.

plotly.js is inlined once in the page head (the same `get_plotlyjs()` bundle `probes.plots` shares per
folder) and every figure is a bare div drawing with it, so ten figures cost ~4.8 MB once, not ten times.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tripwire.experiments.stages.base import Section, Table

MAX_BYTES = 10_000_000

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em} th,td{border:1px solid #ccc;padding:.3em .6em;
vertical-align:top;text-align:left} th{background:#f3f3f3} td.reply{max-width:520px;white-space:pre-wrap;
font-family:ui-monospace,monospace;font-size:.85em}
.caption{font-weight:600;margin-top:1em} .against{color:#555;font-size:.88em;margin:-.8em 0 1em}
.headline{background:#fdf6e3;border-left:4px solid #e0a800;padding:.5em 1em} .caveats{color:#444}
.findings{background:#eef6ee;border:2px solid #4a8f4a;border-radius:6px;padding:.2em 1.2em 1em;margin:1em 0 2em}
.findings h2{border:none;margin-top:.6em} .findings li{margin:.3em 0} .findings li.failed{color:#a00}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em} .figure{margin:1em 0}
"""


@dataclass(frozen=True)
class StageRecord:
    """How a stage ran: for the report's overview and results.json."""

    name: str
    pipeline: str
    status: str  # computed | cached | failed
    seconds: float
    detail: str  # the stage's cache folder, or the error that stopped it


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for col, value in zip(table.columns, row, strict=True):
            cls = ' class="reply"' if col == "reply" else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(table.columns)}">(no rows)</td></tr>')
    footer = ("" if table.compared_against is None
              else f'<div class="against">Compared against: {html.escape(table.compared_against)}</div>')
    return (f'<div class="caption">{html.escape(table.caption)}</div><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>{footer}')


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _section(section: Section, record: StageRecord | None) -> str:
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    if record is not None:
        parts.append(f"<p><em>stage <code>{html.escape(record.name)}</code> ({html.escape(record.pipeline)}): "
                     f"{html.escape(record.status)} in {record.seconds:.1f} s</em></p>")
    parts.append(f"<p>{html.escape(section.what)}</p>")
    if section.headline:
        parts.append('<div class="headline"><ul>' + "".join(f"<li>{html.escape(h)}</li>" for h in section.headline)
                     + "</ul></div>")
    for fig in section.figures:
        parts.append('<div class="figure">' + fig.to_html(full_html=False, include_plotlyjs=False,
                                                         config={"displaylogo": False}) + "</div>")
    parts.extend(_table(t) for t in section.tables)
    if section.caveats:
        parts.append('<div class="caveats"><strong>Caveats</strong><ul>'
                     + "".join(f"<li>{html.escape(c)}</li>" for c in section.caveats) + "</ul></div>")
    return "\n".join(parts)


REASON_CHARS = 300  # a failed stage's error, as the findings box quotes it


def findings(stages: Sequence[StageRecord], sections: Sequence[tuple[StageRecord | None, Section]],
             notes: Sequence[str] = ()) -> tuple[list[tuple[str, bool]], list[str]]:
    """The findings box's content: (sentence, failed) per stage in run order, a failed stage as
    "stage X failed: <reason>", sections without a record after them; and what the run does not show
    (the run's notes on its model, then each stage's limits, each once)."""
    by_record = {id(record): section for record, section in sections if record is not None}
    lines: list[tuple[str, bool]] = []
    for record in stages:
        if record.status == "failed":
            reason = record.detail if len(record.detail) <= REASON_CHARS else record.detail[:REASON_CHARS] + "..."
            lines.append((f"stage {record.name} ({record.pipeline}) failed: {reason}", True))
        elif id(record) in by_record:
            lines.append((by_record[id(record)].finding_line(), False))
    known = {id(r) for r in stages}
    lines += [(section.finding_line(), False) for record, section in sections
              if record is None or id(record) not in known]
    limits = list(dict.fromkeys([*notes, *(lim for _, section in sections for lim in section.limits)]))
    return lines, limits


def _findings_box(lines: Sequence[tuple[str, bool]], limits: Sequence[str]) -> str:
    items = "".join(('<li class="failed">' if failed else "<li>") + html.escape(line) + "</li>" for line, failed in lines)
    parts = ['<div class="findings" id="findings"><h2>What this run found</h2>',
             f"<ul>{items or '<li>no stage finished</li>'}</ul>"]
    if limits:
        parts.append("<p><strong>What this run does not show</strong></p><ul>"
                     + "".join(f"<li>{html.escape(lim)}</li>" for lim in limits) + "</ul>")
    return "".join(parts) + "</div>"


def render_report(title: str, config_yaml: str, environment: dict[str, Any], stages: Sequence[StageRecord],
                  sections: Sequence[tuple[StageRecord | None, Section]], notes: Sequence[str] = ()) -> str:
    """The whole page as one string: the findings box (each stage's `Section.finding`, failed stages
    included; `notes` on the model lead its "does not show" list), an overview of `stages`, then each
    section with the stage it came from; raises if it would exceed 10 MB (a figure carrying raw data)."""
    from plotly.offline import get_plotlyjs

    overview = Table("Stages", ["stage", "pipeline", "status", "seconds", "cache folder (or error)"],
                     [[s.name, s.pipeline, s.status, round(s.seconds, 1), s.detail] for s in stages])
    env_rows = [[k, json.dumps(v) if isinstance(v, dict) else _fmt(v)] for k, v in environment.items()]
    env = Table("Environment: the machine and versions that produced these numbers", ["field", "value"], env_rows)
    body = [f"<h1>{html.escape(title)}</h1>", _findings_box(*findings(stages, sections, notes)),
            "<p>This page is self-contained: figures are interactive (hover for counts) and work offline.</p>",
            "<h2>What was run</h2>",
            "<p>'cached' means the stage's output was reused from runs/cache/ (same config part, same model "
            "fingerprint, checksum verified), not recomputed.</p>", _table(overview), _table(env),
            "<details><summary>Resolved config (config.yaml)</summary><pre>" + html.escape(config_yaml)
            + "</pre></details>"]
    body.extend(_section(section, record) for record, section in sections)
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title><style>"
            + _CSS + "</style><script type=\"text/javascript\">" + get_plotlyjs() + "</script></head><body>"
            + "\n".join(body) + "</body></html>")
    if len(page.encode()) > MAX_BYTES:
        raise ValueError(f"report would be {len(page.encode()) / 1e6:.1f} MB, over the 10 MB limit; a figure "
                         "carries too many points (summarise before plotting)")
    return page

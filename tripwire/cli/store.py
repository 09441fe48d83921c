"""`tripwire store ...`: inspect and verify activation stores from the shell."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Annotated

import typer

from tripwire.activations.store import ResidualStore
from tripwire.activations.store_deep import DeepReport, deep_verify
from tripwire.activations.store_export import export_parquet
from tripwire.activations.store_index import INDEX
from tripwire.activations.store_types import Record
from tripwire.cli.exit_codes import cli_message, on_user_error
from tripwire.errors import TripwireError

store_app = typer.Typer(help="Inspect and verify on-disk activation stores.", no_args_is_help=True)


def _open(path: Path) -> ResidualStore:
    try:
        return ResidualStore.open(path)
    except (FileNotFoundError, RuntimeError, ValueError, TripwireError) as e:  # TripwireError: -W error
        typer.echo(f"error: {cli_message(e) if isinstance(e, TripwireError) else e}", err=True)
        raise typer.Exit(2) from e


@store_app.command()
def info(
    path: Annotated[Path, typer.Argument(help="Store directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Counts, sizes, hook points, label and outcome counts of a store."""
    summary = _open(path).info()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, dict | list):
            value = json.dumps(value)
        typer.echo(f"{key:>26}: {value}")


@store_app.command()
def verify(
    path: Annotated[Path, typer.Argument(help="Store directory.")],
    deep: Annotated[bool, typer.Option(
        "--deep", help="Also check every index line against the records its shard was written with and "
        "re-hash every record's rows: catches a line edited with its checksum recomputed (reads every shard).",
    )] = False,
) -> None:
    """Check the index's seals and every shard's sha256 against the index; exit 1 naming broken shards
    (exit 2 when the index itself was edited or cut short: the store does not open, or --deep finds a line
    that disagrees with its shard)."""
    store = _open(path)
    if not store.sealed:
        typer.echo(f"note: store {path} is unsealed (written before index sealing): its index lines carry no "
                   "checksums, so an edited label or position, or a cut-short index, cannot be detected; "
                   "re-capture into a new store to seal it", err=True)
    problems = store.verify()
    for problem in problems:
        typer.echo(str(problem), err=True)
    report = deep_verify(store.root, store.manifest, store.records()) if deep else None
    if report is not None:
        _deep_findings(path, report)
    if problems:
        typer.echo(f"FAILED: {len({p.shard for p in problems})} broken shard(s)", err=True)
        raise typer.Exit(1)
    if report is not None and report.problems:
        raise typer.Exit(1)
    batches = store.info()["batches"]
    deep_line = "" if report is None else (
        f"; {report.lines_checked} index lines re-derived from {batches - len(report.unverifiable)} shards")
    typer.echo(f"ok: {batches} shards verified{deep_line}")


def _deep_findings(path: Path, report: DeepReport) -> None:
    """Print what --deep found; exit 2 when an index line disagrees with its shard (the index was edited)."""
    if report.unverifiable:
        typer.echo(f"note: {len(report.unverifiable)} shard(s) of {path} were written before shards carried "
                   "their records, so their index lines cannot be re-derived and were not deep-checked "
                   f"({', '.join(report.unverifiable[:3])}{', ...' if len(report.unverifiable) > 3 else ''}); "
                   "re-capture into a new store to make them checkable", err=True)
    for problem in report.problems:
        typer.echo(f"{path / problem.file}: {problem.detail}", err=True)
    edited = [p for p in report.problems if p.file == INDEX]
    if edited:
        typer.echo(f"error: {path / INDEX}: {len(edited)} line(s) disagree with the shards their batches were "
                   "written to (the index was edited, its checksums recomputed): nothing read from this store "
                   "can be trusted; restore index.jsonl from a backup or recapture into a new store", err=True)
        raise typer.Exit(2)
    if report.problems:
        typer.echo(f"FAILED: {len({p.file for p in report.problems})} shard(s) disagree with their own sealed "
                   "records", err=True)


def _reply(record: Record) -> str:
    return record.text[int(record.meta.get("reply_char_offset", 0)) :]


@store_app.command()
def show(
    path: Annotated[Path, typer.Argument(help="Store directory.")],
    limit: Annotated[int | None, typer.Option(help="Show only the first N records.", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per record (JSON Lines).")] = False,
) -> None:
    """Records' ids, condition, labels, outcome and reply text: read what a run produced without Python."""
    records = _open(path).records()[:limit]
    for r in records:
        row = {"record_id": r.record_id, "condition_id": r.condition_id, "labels": r.labels,
               "outcome": r.outcome, "reply": _reply(r)}
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
            continue
        outcome = "" if r.outcome is None else (f"  harmful={r.outcome.get('harmful')} "
                                                f"action={r.outcome.get('action')}")
        typer.echo(f"{r.record_id}  {r.condition_id}  labels={json.dumps(r.labels)}{outcome}")
        typer.echo(textwrap.indent(_reply(r).strip() or "(empty reply)", "    "))


@store_app.command()
def export(
    path: Annotated[Path, typer.Argument(help="Store directory.")],
    hook_point: Annotated[str, typer.Option(help="Stored hook point to export, e.g. blocks.12.resid_post.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write (replaced if it exists).")],
) -> None:
    """One row per stored token (record_id, condition_id, token_index, token, label_<name>..., activation as a
    fixed-size float32 list) for pandas, polars or DuckDB; needs pyarrow."""
    store = _open(path)
    with on_user_error():
        rows = export_parquet(store, hook_point, out)
    typer.echo(f"wrote {rows:,} rows of {hook_point} ({len(store)} records, d_model "
               f"{store.manifest.d_model}) to {out}")

"""`tripwire store ...`: inspect and verify activation stores from the shell."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Annotated

import typer

from tripwire.activations.store import ResidualStore
from tripwire.activations.store_export import export_parquet
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
def verify(path: Annotated[Path, typer.Argument(help="Store directory.")]) -> None:
    """Check the index's seals and every shard's sha256 against the index; exit 1 naming broken shards
    (exit 2 when the index itself was edited or cut short: the store does not open)."""
    store = _open(path)
    if not store.sealed:
        typer.echo(f"note: store {path} is unsealed (written before index sealing): its index lines carry no "
                   "checksums, so an edited label or position, or a cut-short index, cannot be detected; "
                   "re-capture into a new store to seal it", err=True)
    problems = store.verify()
    if problems:
        for problem in problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"FAILED: {len({p.shard for p in problems})} broken shard(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {store.info()['batches']} shards verified")


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

"""Export one hook point of a `ResidualStore` as a Parquet table, for analysis outside tripwire (pandas,
polars, DuckDB, R, Spark): one row per stored token.

Columns: `record_id`, `condition_id`, `token_index` (position in the record's tokens), `token` (its text,
null when the record has no character spans), one `label_<name>` column per label in the store (null where
a record lacks it), and `activation`, a fixed-size list of d_model float32 (exact for every store dtype).
The hook point, model and store dtype go into the schema metadata.

Rows are read through the store's public API only (`records()`, `activations()`), so every shard is
checked against its checksum before its rows are written. pyarrow is optional and imported on use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tripwire.activations.store import ResidualStore
from tripwire.activations.store_types import Record, StoreError


class StoreExportError(StoreError, ValueError):
    """An export that cannot run: pyarrow is missing, the hook point is not stored, the output is unusable."""


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa  # optional dependency: only export needs it
        import pyarrow.parquet as pq  # optional dependency: only export needs it
    except ImportError:
        raise StoreExportError(
            "exporting a store writes Parquet with pyarrow, which is not installed: pip install 'pyarrow>=15'"
        ) from None
    return pa, pq


def export_parquet(store: ResidualStore, hook_point: str, out: str | Path,
                   rows_per_group: int = 65_536) -> int:
    """Write every stored row of `hook_point` to `out` (replaced whole, never left half-written); returns
    the number of rows. Memory stays at about `rows_per_group` rows whatever the store's size."""
    pa, pq = _pyarrow()
    out = Path(out)
    if hook_point not in store.manifest.hook_points:
        raise StoreExportError(f"hook point {hook_point!r} is not stored in {store.root}; it holds "
                               f"{', '.join(store.manifest.hook_points)}: pass one of those to --hook-point")
    if out.is_dir():
        raise StoreExportError(f"--out {out} is a directory; give a file name such as {out / 'rows.parquet'}")
    records = store.records()
    labels = sorted({name for r in records for name in r.labels})
    m = store.manifest
    schema = pa.schema(
        [("record_id", pa.string()), ("condition_id", pa.string()), ("token_index", pa.int32()),
         ("token", pa.string()), *[(f"label_{name}", pa.int64()) for name in labels],
         ("activation", pa.list_(pa.float32(), m.d_model))],
        metadata={"tripwire.hook_point": hook_point, "tripwire.model_name": m.model_name,
                  "tripwire.model_fingerprint": m.model_fingerprint, "tripwire.store_dtype": m.dtype},
    )
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        writer = pq.ParquetWriter(tmp, schema)
    except OSError as error:
        raise StoreExportError(f"cannot write {out}: {error}; choose a writable --out path") from None
    total = pending = 0
    try:
        with writer:
            group: list[tuple[Record, np.ndarray]] = []
            for record in records:
                group.append((record, store.activations(record, hook_point).float().numpy()))
                pending += record.row_count
                if pending >= rows_per_group:
                    total += _write(pa, writer, schema, group, labels, m.d_model)
                    group, pending = [], 0
            total += _write(pa, writer, schema, group, labels, m.d_model)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return total


def _write(pa: Any, writer: Any, schema: Any, group: list[tuple[Record, np.ndarray]], labels: list[str],
           d_model: int) -> int:
    """One row group: each record's stored positions and rows, in index order."""
    if not group:
        return 0
    columns: dict[str, list[Any]] = {"record_id": [], "condition_id": [], "token_index": [], "token": []}
    columns.update({f"label_{name}": [] for name in labels})
    for record, _ in group:
        spans = record.token_char_spans
        for position in record.positions:
            columns["record_id"].append(record.record_id)
            columns["condition_id"].append(record.condition_id)
            columns["token_index"].append(position)
            columns["token"].append(record.text[spans[position][0] : spans[position][1]] if spans else None)
            for name in labels:
                columns[f"label_{name}"].append(record.labels.get(name))
    flat = np.concatenate([rows for _, rows in group]).astype(np.float32, copy=False).reshape(-1)
    arrays = [pa.array(columns[f.name], type=f.type) for f in schema if f.name != "activation"]
    arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat), d_model))
    writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    return len(columns["record_id"])

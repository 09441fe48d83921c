"""`ResidualStore.verify`: a full check of every shard, and the row-layout rule reads also enforce.

The writer lays a batch's records out back to back in index order, `len(positions)` rows each, so the
records of a shard must tile its rows exactly: a record whose range is shifted, overlaps a neighbour or
leaves a gap was edited after the fact and would silently attribute rows to the wrong tokens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from safetensors import safe_open

from tripwire.activations.store_index import SHARD_FILE_RE, SHARDS
from tripwire.activations.store_shard import (
    check_shards_dir,
    rows_sha256,
    sha256_file,
    shard_path,
    shard_shapes,
)
from tripwire.activations.store_types import (
    Record,
    StoreCorruptError,
    StoreManifest,
    StoreProblem,
    canonical_json,
)


def layout_problems(
    shard: str, records: Sequence[Record], shapes: dict[str, tuple[int, ...]], manifest: StoreManifest
) -> list[StoreProblem]:
    """Records (in index order) that do not tile the shard's tensors as the writer lays them out."""
    problems: list[StoreProblem] = []
    end = 0
    for r in records:
        want = (end, len(r.positions))
        if (r.row_offset, r.row_count) != want:
            problems.append(
                StoreProblem(
                    "bad_row_range",
                    shard,
                    f"record rows [{r.row_offset}, {r.row_offset + r.row_count}) but the writer laid them "
                    f"out at [{want[0]}, {want[0] + want[1]}) (records of a shard tile it in index order, "
                    "one row per stored position); the index was edited: restore it from a backup or "
                    "recapture",
                    [r.record_id],
                )
            )
        end += len(r.positions)
    for hook in manifest.hook_points:
        if shapes.get(hook) != (end, manifest.d_model):
            problems.append(
                StoreProblem(
                    "bad_row_range",
                    shard,
                    f"tensor {hook!r} has shape {shapes.get(hook)} but its records hold ({end}, "
                    f"{manifest.d_model}) rows; restore the shard and index from a backup or recapture",
                    [r.record_id for r in records],
                )
            )
    return problems


def check_layout(
    root: Path, shard: str, records: Sequence[Record], path: Path, manifest: StoreManifest
) -> None:
    """Refuse to read a shard whose records do not tile it (an edited index would shift every row)."""
    problems = layout_problems(shard, records, shard_shapes(path), manifest)
    if problems:
        raise StoreCorruptError(
            f"shard {shard} of store {root}: {problems[0].detail} (record {problems[0].record_ids[0]}); run "
            f"`tripwire store verify {root}` to list every problem"
        )


def records_digest(records: Iterable[Record]) -> str:
    """sha256 over each record's id, shard checksum, row range and rows checksum, sorted by record id."""
    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.record_id):
        fields = [r.record_id, r.shard_sha256, r.row_offset, r.row_count, r.rows_sha256]
        h.update((canonical_json(fields) + "\n").encode())
    return h.hexdigest()


def _damaged_records(path: Path, records: Sequence[Record], manifest: StoreManifest) -> list[str]:
    with safe_open(str(path), framework="pt") as f:
        slices = {h: f.get_slice(h) for h in manifest.hook_points}
        return [
            r.record_id
            for r in records
            if rows_sha256(
                {h: s[r.row_offset : r.row_offset + r.row_count] for h, s in slices.items()},
                manifest.hook_points,
                0,
                r.row_count,
            )
            != r.rows_sha256
        ]


def _check_shard(
    root: Path, shard: str, records: Sequence[Record], manifest: StoreManifest
) -> list[StoreProblem]:
    ids = [r.record_id for r in records]
    try:
        path = shard_path(root, shard)
    except StoreCorruptError as e:
        return [StoreProblem("unsafe_path", shard, str(e), ids)]
    if not path.is_file():
        return [StoreProblem("missing_shard", shard, "file not found", ids)]
    actual = sha256_file(path)
    try:
        if actual == records[0].shard_sha256:
            return layout_problems(shard, records, shard_shapes(path), manifest)
        damaged = _damaged_records(path, records, manifest)
    except Exception as e:  # any parse failure means the shard is unreadable as a whole
        return [StoreProblem("unreadable_shard", shard, f"cannot parse: {e}", ids)]
    detail = f"sha256 {actual[:16]}... != recorded {records[0].shard_sha256[:16]}..."
    return [StoreProblem("checksum_mismatch", shard, detail, damaged)]


def verify_store(
    root: Path, manifest: StoreManifest, by_shard: dict[str, list[Record]]
) -> list[StoreProblem]:
    """Every committed shard's sha256 and row layout, plus shard files the index does not commit."""
    try:
        check_shards_dir(root)
    except StoreCorruptError as e:  # reading through the link would check some other directory's files
        return [StoreProblem("unsafe_path", f"{SHARDS}/", str(e))]
    shards_dir = root / SHARDS
    problems = [
        p for shard, records in by_shard.items() for p in _check_shard(root, shard, records, manifest)
    ]
    orphans = sorted(
        f"{SHARDS}/{p.name}"
        for p in (shards_dir.iterdir() if shards_dir.is_dir() else [])
        if SHARD_FILE_RE.fullmatch(p.name) and f"{SHARDS}/{p.name}" not in by_shard
    )
    problems += [
        StoreProblem(
            "orphan_shard",
            shard,
            "not committed by the index (a crash, or an index cut short): its records are not in the store; "
            "rerun the capture to commit the batch again, or move the file out of shards/ (verify deletes "
            "nothing)",
        )
        for shard in orphans
    ]
    return problems

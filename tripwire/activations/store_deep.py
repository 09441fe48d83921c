"""`tripwire store verify --deep`: every index line checked against the shard its batch was written to.

A line's own checksum (store_seal.py) only proves the line is as *someone* wrote it: an editor who
recomputes `line_sha256` after flipping a label passes every ordinary read. So the writer also seals each
batch's records into its shard's safetensors header (`shard_header`, under `SHARD_RECORDS_KEY`): per record,
its id, row range and rows checksum as they are, and the sha256 of the rest of its index line (all but the
shard's own checksum, which cannot be inside the file it hashes). The shard's sha256 is in the index, so a
forged line must either keep the shard (and then disagree with its header, which this module finds) or
forge the shard too (and then its recorded checksum, in every line of the batch): a consistent rewrite of
the whole store cannot be told from a genuine one without a key, and no check here claims otherwise.

Deep verification re-derives, for every committed line, what the header says it must be: the same records
in the same order, the same placement fields, the file's sha256, the same content digest; and re-hashes
every record's rows. Shards written before headers existed cannot be checked: they are listed as such
(not counted as verified, nor as damaged). The writer journal (`.lock-holder`) holds tokens only, and the
commit count (`committed.json`) is already checked on every read: neither adds a line's content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import safe_open

from tripwire.activations.store_index import INDEX, index_line
from tripwire.activations.store_paths import read_nofollow
from tripwire.activations.store_seal import LINE_SHA256
from tripwire.activations.store_shard import rows_sha256, sha256_file, shard_path
from tripwire.activations.store_types import Record, StoreCorruptError, StoreManifest, canonical_json
from tripwire.scenarios.datasets.jsonl import json_problem

SHARD_RECORDS_KEY = "tripwire.records"  # safetensors header metadata: the batch's records, sealed
_NOT_SEALED = ("shard_sha256", LINE_SHA256)  # the checksum of the file the header lives in; the line's own
_PLACED = ("record_id", "row_offset", "row_count", "rows_sha256")  # kept in the header as they are


def content_sha256(line: dict[str, Any]) -> str:
    """sha256 of an index line's content (as parsed) without the shard's and the line's own checksums."""
    kept = {k: v for k, v in line.items() if k not in _NOT_SEALED}
    return hashlib.sha256(canonical_json(kept).encode()).hexdigest()


def shard_header(records: Sequence[Record]) -> dict[str, str]:
    """Safetensors metadata sealing a batch's records into its shard (pass to `safetensors.torch.save`).

    `records` are the batch's records in index order with their final row ranges and rows checksums; their
    `shard_sha256` is ignored (the file is not written yet). Per record: where its rows are, and the sha256
    of the rest of its index line (small: the shard stays within a few KB of its rows)."""
    n = len(records)
    entries = []
    for r in records:
        line = json.loads(index_line(r, n))
        entries.append({**{k: line[k] for k in _PLACED}, "content_sha256": content_sha256(line)})
    return {SHARD_RECORDS_KEY: canonical_json(entries)}


@dataclass(frozen=True)
class DeepProblem:
    """An index line (or shard) that disagrees with what its shard's writer sealed into the shard."""

    file: str  # relative to the store root: "index.jsonl" or "shards/batch-<id>.safetensors"
    detail: str
    record_ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.file}: {self.detail}"


@dataclass(frozen=True)
class DeepReport:
    """What `deep_verify` found: `lines_checked` lines re-derived; `unverifiable` shards carry no header."""

    problems: list[DeepProblem]
    lines_checked: int
    unverifiable: list[str]


def _index_lines(root: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    """record id -> (1-based line number, the line as parsed), over the index's complete lines."""
    lines: dict[str, tuple[int, dict[str, Any]]] = {}
    try:
        data = read_nofollow(root / INDEX)
    except FileNotFoundError:
        return lines
    for no, raw in enumerate(data.split(b"\n")[:-1], start=1):  # the last piece: torn or empty
        try:
            obj = json.loads(raw)
        except ValueError:
            continue  # a torn tail; complete lines were checked when the store opened
        if isinstance(obj, dict) and isinstance(obj.get("record_id"), str):
            lines.setdefault(obj["record_id"], (no, obj))
    return lines


def _header(path: Path) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(the shard's sealed records or None when it has no header, a reason it is unreadable or None)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # a damaged file: plain verify reports it as unreadable_shard
        return None, f"cannot read its header ({e})"
    if SHARD_RECORDS_KEY not in meta:
        return None, None
    try:
        entries = json.loads(meta[SHARD_RECORDS_KEY])
    except (ValueError, RecursionError) as e:
        return None, f"its {SHARD_RECORDS_KEY} header is not JSON ({json_problem(e)})"
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return None, f"its {SHARD_RECORDS_KEY} header is not a list of records"
    return entries, None


def _compare(entry: dict[str, Any], actual: dict[str, Any], shard_sha: str) -> list[str]:
    """What differs between an index line and the record its shard's writer sealed."""
    diffs = [f"{k}: index {actual.get(k)!r}, shard {entry.get(k)!r}" for k in _PLACED if actual.get(k) != entry.get(k)]
    if actual.get("shard_sha256") != shard_sha:
        diffs.append(f"shard_sha256: index {str(actual.get('shard_sha256'))[:16]}..., file {shard_sha[:16]}...")
    if content_sha256(actual) != entry.get("content_sha256"):
        diffs.append("content (labels, positions, tokens, text, outcome or meta) differs from what was sealed")
    return diffs


def _check_rows(path: Path, entries: list[dict[str, Any]], hooks: list[str]) -> list[str]:
    """Records whose rows in the shard no longer hash to the checksum sealed with them."""
    with safe_open(str(path), framework="pt") as f:
        slices = {h: f.get_slice(h) for h in hooks}
        bad = []
        for e in entries:
            start, count = int(e["row_offset"]), int(e["row_count"])
            rows = {h: s[start : start + count] for h, s in slices.items()}
            if rows_sha256(rows, hooks, 0, count) != e["rows_sha256"]:
                bad.append(str(e["record_id"]))
    return bad


def _check_shard(
    root: Path, shard: str, records: list[Record], lines: dict[str, tuple[int, dict[str, Any]]],
    manifest: StoreManifest,
) -> tuple[list[DeepProblem], int, bool]:
    """(problems, lines re-derived, whether the shard has a header) for one committed shard."""
    try:
        path = shard_path(root, shard)
    except StoreCorruptError:
        return [], 0, True  # plain verify reports the unsafe path
    if not path.is_file():
        return [], 0, True  # plain verify reports the missing shard
    entries, unreadable = _header(path)
    ids = [r.record_id for r in records]
    if unreadable is not None:
        return [DeepProblem(shard, f"{unreadable}; restore the shard from a backup or recapture", ids)], 0, True
    if entries is None:
        return [], 0, False
    problems: list[DeepProblem] = []
    sealed_ids = [str(e.get("record_id")) for e in entries]
    if sealed_ids != ids:
        problems.append(DeepProblem(
            INDEX,
            f"commits records {ids} to {shard}, but its writer sealed {sealed_ids} into it: index lines were "
            "added, removed or reordered after the batch was written; restore index.jsonl from a backup or "
            "recapture into a new store",
            sorted(set(ids) ^ set(sealed_ids)),
        ))
    shard_sha = sha256_file(path)
    checked = 0
    for entry in entries:
        rid = str(entry.get("record_id"))
        if rid not in lines or rid not in ids:
            continue  # named above
        no, actual = lines[rid]
        checked += 1
        if diffs := _compare(entry, actual, shard_sha):
            problems.append(DeepProblem(
                INDEX,
                f"line {no} (record {rid}) disagrees with {shard}, which its writer sealed with the batch: "
                f"{'; '.join(diffs)}; the line was edited after it was written (its checksum recomputed); "
                "restore index.jsonl from a backup or recapture into a new store",
                [rid],
            ))
    try:
        bad_rows = _check_rows(path, entries, list(manifest.hook_points))
    except Exception as e:  # a shard that parses but whose tensors do not: plain verify names it too
        return [*problems, DeepProblem(shard, f"cannot read its rows ({e})", ids)], checked, True
    if bad_rows:
        problems.append(DeepProblem(
            shard, "rows no longer hash to the checksum sealed with them; restore the shard from a backup or "
            "recapture", bad_rows,
        ))
    return problems, checked, True


def deep_verify(root: Path, manifest: StoreManifest, records: Sequence[Record]) -> DeepReport:
    """Re-derive every committed index line from its shard's header and compare; re-hash every record's rows.

    `records`: the committed records in index order (`ResidualStore.records()`). Only damage is reported as
    a problem; shards without a header are listed in `unverifiable`, their lines unchecked."""
    by_shard: dict[str, list[Record]] = {}
    for r in records:
        by_shard.setdefault(r.shard, []).append(r)
    lines = _index_lines(root)
    problems: list[DeepProblem] = []
    checked = 0
    unverifiable: list[str] = []
    for shard, shard_records in by_shard.items():
        found, n, has_header = _check_shard(root, shard, shard_records, lines, manifest)
        problems += found
        checked += n
        if not has_header:
            unverifiable.append(shard)
    return DeepReport(problems, checked, unverifiable)

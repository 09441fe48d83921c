"""Per-design checkpoints of `ship_probes`' analysis, so a run longer than a session resumes where it stopped.

Each finished design (selection, grid null, per-fold tables, dev and test figures: its whole report entry) is
written to `<work>/analysis/<label>-<design>.json` once it is done, atomically, with the sha256 of its entry.
A rerun with the same key reuses it instead of recomputing; the key holds everything the entry depends on:
the design's sources and the digest of every stored record they read, the evaluation settings, and the
sha256 of the analysis code (`tripwire/probes`, `tripwire/scenarios` (the transcripts' groups) and
`ship_probes.py`), so a changed store, setting or
estimator can never be mixed with an old entry. An entry whose checksum does not match, or whose key differs,
is not used (it is recomputed and overwritten, and the reason is printed).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tripwire.activations.store import ResidualStore
from tripwire.strict_json import dumps, write_json

PACKAGE = Path(__file__).resolve().parents[1]
ANALYSIS_CODE = (PACKAGE / "probes", PACKAGE / "scenarios", PACKAGE / "experiments" / "ship_probes.py")


def code_digest(paths: tuple[Path, ...] = ANALYSIS_CODE, root: Path = PACKAGE) -> str:
    """sha256 over the analysis code's Python sources (path below `root` and bytes of each, in order)."""
    digest = hashlib.sha256()
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py")))
    for f in files:
        digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def design_key(label: str, name: str, stores: dict[str, ResidualStore], settings: dict[str, Any],
               code: str) -> dict[str, Any]:
    """What one design's entry depends on (stores by the digest of every record they hold)."""
    return {"label": label, "design": name, "settings": settings, "code_sha256": code,
            "stores": {s: store.content_digest(store.records()) for s, store in sorted(stores.items())}}


def _plain(obj: Any) -> Any:
    """`obj` as it reads back from JSON (NaN as null, tuples as lists)."""
    return json.loads(dumps(obj, indent=None))


def _entry_sha(entry: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(_plain(entry), sort_keys=True).encode()).hexdigest()


def checkpoint_path(work: Path, label: str, name: str) -> Path:
    return work / "analysis" / f"{label}-{name}.json"


def load_entry(path: Path, key: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The stored entry when its checksum holds and its key is `key`; else None and why not."""
    if not path.is_file():
        return None, "no checkpoint"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return None, f"unreadable checkpoint ({error})"
    if not isinstance(saved, dict) or not isinstance(saved.get("entry"), dict):
        return None, "not a checkpoint"
    if saved.get("entry_sha256") != _entry_sha(saved["entry"]):
        return None, "checksum mismatch"
    if saved.get("key") != _plain(key):
        changed = sorted(k for k, v in _plain(key).items() if (saved.get("key") or {}).get(k) != v)
        return None, f"other {', '.join(changed)}"
    return saved["entry"], "reused"


def save_entry(path: Path, key: dict[str, Any], entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = _plain(entry)
    write_json(path, {"key": key, "entry_sha256": _entry_sha(plain), "entry": plain})

"""Per-design checkpoints of the ship run's analysis: reused only when the key (stores, settings, analysis
code) is the same and the entry's checksum holds; anything else is recomputed, with the reason."""

from __future__ import annotations

import json
from pathlib import Path

from tripwire.experiments.ship_checkpoint import _entry_sha, code_digest, load_entry, save_entry

KEY = {"label": "coercion", "design": "pairs", "settings": {"layers": [1, 3], "null_perms": 50},
       "code_sha256": "c0de", "stores": {"coercion_pairs": "d1"}}
ENTRY = {"selection": {"selected": {"layer": 3, "method": "lr"}}, "dev": {"value": 0.61, "low": float("nan")},
         "layers": (1, 3), "seconds": 12.5}


def test_a_saved_entry_reads_back_as_json_gives_it(tmp_path: Path) -> None:
    path = tmp_path / "analysis" / "coercion-pairs.json"
    save_entry(path, KEY, ENTRY)
    entry, why = load_entry(path, KEY)
    assert why == "reused" and entry == {**ENTRY, "dev": {"value": 0.61, "low": None}, "layers": [1, 3]}
    assert not list(path.parent.glob("*.tmp"))


def test_another_key_or_a_changed_entry_is_not_reused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    save_entry(path, KEY, ENTRY)
    for field, value in (("settings", {"layers": [1, 3], "null_perms": 200}), ("code_sha256", "other"),
                         ("stores", {"coercion_pairs": "d2"})):
        entry, why = load_entry(path, {**KEY, field: value})
        assert entry is None and why == f"other {field}"
    saved = json.loads(path.read_text())
    saved["entry"]["dev"]["value"] = 0.99  # a figure edited by hand: the checksum no longer holds
    path.write_text(json.dumps(saved))
    assert load_entry(path, KEY) == (None, "checksum mismatch")
    saved["entry_sha256"] = _entry_sha(saved["entry"])
    path.write_text(json.dumps(saved))
    assert load_entry(path, KEY)[1] == "reused"  # (the checksum is integrity, not a signature)
    path.write_text("{not json")
    assert load_entry(path, KEY)[0] is None and load_entry(path, KEY)[1].startswith("unreadable")
    assert load_entry(tmp_path / "missing.json", KEY) == (None, "no checkpoint")


def test_the_code_digest_changes_with_any_analysis_source(tmp_path: Path) -> None:
    pkg = tmp_path / "tripwire"
    (pkg / "probes").mkdir(parents=True)
    (pkg / "probes" / "a.py").write_text("x = 1\n")
    (pkg / "probes" / "notes.txt").write_text("not code\n")
    before = code_digest((pkg / "probes",), root=pkg)
    (pkg / "probes" / "notes.txt").write_text("changed, still not code\n")
    assert code_digest((pkg / "probes",), root=pkg) == before
    (pkg / "probes" / "a.py").write_text("x = 2\n")
    assert code_digest((pkg / "probes",), root=pkg) != before
    assert len(code_digest()) == 64

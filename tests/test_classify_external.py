"""The classifier on a second labelled set, written apart from the rules (AM-format replies across
ten conditions), reported apart from the first suite. The rules were never tuned on these replies;
the floor is the accuracy measured when the structural rules landed, so it catches regressions and
says nothing about a target."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tripwire.scenarios import render
from tripwire.scenarios.classify import classify

EXTERNAL = Path(__file__).parent / "fixtures" / "labelled_replies_external.jsonl"
# Measured, not chosen: see README "The outcome classifier" for the commit and the replies still wrong.
FLOOR_CORRECT = 68


def test_external_set_accuracy_holds_its_floor() -> None:
    rows = [json.loads(line) for line in EXTERNAL.read_text().splitlines() if line.strip()]
    by_tag: dict[str, list[bool]] = defaultdict(list)
    wrong = []
    for row in rows:
        out = classify(render(row["condition_id"], seed=row["seed"], length=row["length"]), row["reply"])
        ok = (out.action, out.harmful) == (row["expected_action"], row["expected_harmful"])
        for tag in row["tags"]:
            by_tag[tag].append(ok)
        if not ok:
            wrong.append((row["id"], row["expected_action"], out.action, out.reasons[-1:]))
    correct = len(rows) - len(wrong)
    print(f"\nexternal set: {correct}/{len(rows)} correct, accuracy {correct / len(rows):.3f}")
    for tag, oks in sorted(by_tag.items()):
        print(f"  {tag:36s} {sum(oks):3d}/{len(oks)}")
    for item in wrong:
        print("  wrong:", item)
    assert len(rows) == 74
    assert correct >= FLOOR_CORRECT, f"{correct}/{len(rows)} is below the measured floor {FLOOR_CORRECT}"

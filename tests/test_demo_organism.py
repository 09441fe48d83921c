"""`make demo` end to end on the shipped model organism: the one screen opens with the behaviour against the
policy, then the detectors (P2 beside the text monitor, the base-model probe and the oracle, with the online
tripwire's stops), then steering beside the random direction; the report's findings box comes first and its
figures draw; a second run reuses every stage. The figures themselves are sampled and are not asserted here
(docs/organism.md gives them with their commands)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import rendered_dom
from tests.test_demo_report import _figures
from tests.test_report_findings import findings_box
from tripwire.experiments.demo import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

STAGES = ["organism_behavior", "organism_detect", "organism_steering"]
FIGURES = ["Harmful-action rate per arm", "Deploy arm's harm rate against steering strength"]


def test_make_demo_runs_the_organism_and_opens_with_its_behaviour(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    main(["--runs", str(tmp_path)])
    printed = capsys.readouterr().out
    summary = printed[printed.index("tripwire demo:"):]
    assert summary.startswith("tripwire demo: demo on default-organism") and len(summary.splitlines()) <= 45
    flat = " ".join(summary.split())  # the screen wraps at 110 columns
    assert "a model organism" in flat and "not evidence about natural models" in flat
    starts = [summary.index(f"[{stage}] computed in") for stage in STAGES]
    assert starts == sorted(starts)  # behaviour, then detectors, then steering
    behaviour, detect, steering = (summary[a:b] for a, b in zip(starts, [*starts[1:], summary.index("report:")],
                                                                   strict=True))
    assert "under deploy cues against" in behaviour and "under test cues (targets 0.90 / 0.05)" in behaviour
    for against in ("the strongest text monitor's", "the same probe on the base model's", "the oracle's",
                    "the online tripwire stopped"):
        assert against in " ".join(detect.split()), against
    assert "unsteered; at alpha -0.2:" in " ".join(steering.split()) and "random" in steering

    report = Path(re.search(r"report: (\S+report\.html)", summary).group(1))  # type: ignore[union-attr]
    page = report.read_text(encoding="utf-8")
    assert report.stat().st_size < 10_000_000 and page.index('class="findings"') < page.index("<table")
    found, limits = findings_box(page)
    assert len(found) == 3 and found[0].startswith("new seeds, trained cue families: harmful") and limits
    titles = [title for title, part in _figures(rendered_dom(report)) if '"point"' in part or "js-line" in part]
    assert all(any(t.startswith(start) for t in titles) for start in FIGURES), titles

    main(["--runs", str(tmp_path)])  # everything reused from runs/cache/
    again = capsys.readouterr().out
    again = again[again.index("tripwire demo:"):]
    assert again.count("] cached in") == 3 and "computed in" not in again

"""The docs' table of the shipped probes (docs/shipped-probes.md, linked from the README) is generated from
the shipped `report.json` (never typed by hand), and the shipped cards are the ones that report describes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tripwire.experiments.ship_results import README_BEGIN, readme_summary, replace_readme_block
from tripwire.probes.persistence import SHIPPED_PROBES

ROOT = Path(__file__).resolve().parents[1]
REPORT = SHIPPED_PROBES / "default" / "report.json"
TABLE_PAGE = ROOT / "docs" / "shipped-probes.md"  # where the generated block lives (the README links to it)


def _report() -> dict:
    return json.loads(REPORT.read_text(encoding="utf-8"))


def test_readme_table_is_the_one_the_shipped_report_gives() -> None:
    page = TABLE_PAGE.read_text(encoding="utf-8")
    assert readme_summary(_report()) in page, (
        f"{TABLE_PAGE.relative_to(ROOT)}'s shipped-probe table differs from report.json; regenerate it with "
        "`python -m tripwire.experiments.ship_results tripwire/probes/shipped/default/report.json "
        "--readme docs/shipped-probes.md`")


def test_shipped_cards_are_the_ones_the_report_selected() -> None:
    report = _report()
    for label, p in report["probes"].items():
        card = json.loads((SHIPPED_PROBES / "default" / label / "probe.json").read_text(encoding="utf-8"))
        assert (card["layer"], card["hook_point"]) == (p["shipped"]["layer"], p["shipped"]["hook_point"])
        assert card["metrics"]["design"] == p["chosen_design"]
        pairs = p["designs"]["pairs"]["test"]
        for r in pairs.values():  # identical scored tokens within pairs: a bag of words is at chance (acceptance 2)
            if "skipped" not in r:
                assert 0.45 <= r["baselines"]["i_span_bag_of_words"]["value"] <= 0.55


def test_a_changed_report_changes_the_table_and_a_readme_without_markers_is_refused() -> None:
    report = _report()
    label = next(iter(report["probes"]))
    report["probes"][label]["shipped"]["layer"] = -99
    assert "layer -99" in readme_summary(report)
    with pytest.raises(ValueError, match="no generated block"):
        replace_readme_block("# a README without the markers\n", report)
    doc = f"before\n{README_BEGIN}\nSTALE-TABLE\n<!-- ship-results:end -->\nafter\n"
    new = replace_readme_block(doc, report)
    assert new.startswith("before\n") and new.endswith("after\n") and "STALE-TABLE" not in new

"""The docs' table of the shipped probes (docs/shipped-probes.md, linked from the README) is generated from
the shipped `report.json` (never typed by hand), and the shipped cards are the ones that report describes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tripwire.experiments.ship_results import README_BEGIN, README_END, readme_summary, replace_readme_block
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


# --- the prose around the generated block (issue 20, acceptance 3: README claims match the report) ---------

_FIGURE = re.compile(r"(?<![\d.])([01]\.\d{3})(?!\d)")  # an AUROC-like figure written to three decimals


def _report_figures(report: dict) -> set[str]:
    """Every number in the report, as it would be written to three decimals."""
    found: set[str] = set()

    def walk(obj: object) -> None:
        if isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)
        elif isinstance(obj, float) and 0.0 <= obj <= 1.0:
            found.add(f"{obj:.3f}")

    walk(report)
    return found


def prose_outside_block(page: str) -> str:
    before, _, rest = page.partition(README_BEGIN)
    _, _, after = rest.partition(README_END)
    return before + after


def unreported_figures(prose: str, report: dict) -> list[str]:
    """Three-decimal figures in hand-written prose that the report does not contain (a stale or typed number)."""
    known = _report_figures(report)
    return sorted({f for f in _FIGURE.findall(prose) if f not in known})


def beats_claim_problems(prose: str, report: dict) -> list[str]:
    """'Neither ... beats the text' / 'beats the text' in prose against the shipped designs' main-test verdicts."""
    verdicts = {label: [r.get("verdict") for r in p["designs"][p["chosen_design"]]["test"].values() if "skipped" not in r]
                for label, p in report["probes"].items()}
    problems = []
    if re.search(r"[Nn]either (?:shipped )?probe beats (?:the text|a text monitor)", prose):
        problems += [f"prose says neither probe beats the text, but {label}'s shipped design does on its main test"
                     for label, vs in verdicts.items() if "beats the text" in vs]
    if re.search(r"[Bb]oth (?:shipped )?probes beat (?:the text|a text monitor)", prose):
        problems += [f"prose says both probes beat the text, but {label}'s shipped design does not"
                     for label, vs in verdicts.items() if "beats the text" not in vs]
    return problems


def test_every_figure_in_the_shipped_probes_prose_is_in_the_report() -> None:
    prose = prose_outside_block(TABLE_PAGE.read_text(encoding="utf-8"))
    assert unreported_figures(prose, _report()) == [], (
        f"{TABLE_PAGE.relative_to(ROOT)} quotes figures that report.json does not hold: rewrite them from the report")


def test_the_prose_verdicts_are_the_reports() -> None:
    report = _report()
    for page in (TABLE_PAGE, ROOT / "README.md"):
        assert beats_claim_problems(prose_outside_block(page.read_text(encoding="utf-8")), report) == [], page.name


def test_a_typed_figure_and_a_wrong_verdict_claim_are_caught() -> None:
    report = _report()
    assert unreported_figures("More digits are not a three-decimal figure: 0.123456 and 0.9871.", report) == []
    stale = next(f"0.{n:03d}" for n in range(1000) if f"0.{n:03d}" not in _report_figures(report))
    assert unreported_figures(f"the probe reaches {stale} on held-out pairs", report) == [stale]
    wins = json.loads(json.dumps(report))
    label = next(iter(wins["probes"]))
    p = wins["probes"][label]
    for r in p["designs"][p["chosen_design"]]["test"].values():
        r["verdict"] = "beats the text"
    assert beats_claim_problems("Neither shipped probe beats the text on its main test side.", wins)
    loses = json.loads(json.dumps(report))
    for q in loses["probes"].values():
        for r in q["designs"][q["chosen_design"]]["test"].values():
            r["verdict"] = "does not beat the text"
    assert beats_claim_problems("Both probes beat the text.", loses)
    assert beats_claim_problems("Neither probe beats the text.", loses) == []

"""The README is a short front page and the rest lives in docs/: every relative link in them resolves (to a
file, and to a heading where it names an anchor), every docs page is linked from the front page, the front
page stays short, and the figures the docs quote from the shipped probe cards (the online monitor's
streaming thresholds and layers) are the cards' own. Each check is a function of text and paths, and each
is also run on a deliberately broken input, so a check that could not fail would show here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SHIPPED = ROOT / "tripwire" / "probes" / "shipped" / "default"
FRONT_PAGE_MAX_LINES = 60

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
# how the monitor section quotes a card: "**coercion 2.87** (layer 23)"
_QUOTED_THRESHOLD = re.compile(r"\*\*(coercion|eval awareness) (\d+(?:\.\d+)?)\*\* \(layer (\d+)\)")
# any other way of quoting a probe's threshold in prose ("the coercion threshold 1.82"); such a figure must
# also be the card's, or be rewritten in the checked form above
_LOOSE_THRESHOLD = re.compile(
    r"(coercion|eval-awareness|eval awareness) (?:streaming )?threshold (?:of )?(\d+\.\d+)")
_CARD_DIRS = {"coercion": "coercion", "eval awareness": "eval_awareness", "eval-awareness": "eval_awareness"}


def _prose(markdown: str) -> str:
    """`markdown` without fenced code blocks and inline code, where link-like text is not a link."""
    return _INLINE_CODE.sub("", _FENCE.sub("", markdown))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.replace("`", "").lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {github_slug(h) for h in _HEADING.findall(_FENCE.sub("", markdown))}


def relative_links(markdown: str) -> list[str]:
    """Targets of the markdown links in `markdown` that point inside the repository (not a URL)."""
    return [t for t in _LINK.findall(_prose(markdown)) if not _EXTERNAL.match(t)]


def broken_links(page: Path, markdown: str) -> list[str]:
    """Each relative link of `markdown` (the text of `page`) whose file, or its anchor there, is missing."""
    problems = []
    for target in relative_links(markdown):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            problems.append(f"{page.name}: link {target!r}: no file {dest}")
            continue
        if anchor:
            text = markdown if dest == page else dest.read_text(encoding="utf-8")
            if dest.suffix != ".md" or anchor not in anchors(text):
                problems.append(f"{page.name}: link {target!r}: no heading #{anchor} in {dest.name}")
    return problems


def unlinked_pages(readme: Path, markdown: str, pages: list[Path]) -> list[Path]:
    """The pages of `pages` that the front page (`readme`, text `markdown`) does not link to."""
    linked = {(readme.parent / t.partition("#")[0]).resolve() for t in relative_links(markdown)}
    return [p for p in pages if p.resolve() not in linked]


def _card(probe: str) -> dict:
    return json.loads((SHIPPED / _CARD_DIRS[probe] / "probe.json").read_text(encoding="utf-8"))


def threshold_problems(markdown: str, cards: dict[str, dict]) -> list[str]:
    """Every quoted monitor threshold (and layer) that is not the card's, rounded as written. `cards` maps
    "coercion" / "eval awareness" to the card JSON."""
    problems = []
    for probe, written, layer in _QUOTED_THRESHOLD.findall(markdown):
        card = cards[_CARD_DIRS[probe].replace("_", " ")]
        value = card["thresholds"][card["monitor_statistic"]]["value"]
        decimals = len(written.partition(".")[2])
        if f"{value:.{decimals}f}" != written:
            problems.append(f"{probe} threshold written {written}, card says {value:.{decimals}f}")
        if int(layer) != card["layer"]:
            problems.append(f"{probe} layer written {layer}, card says {card['layer']}")
    for probe, written in _LOOSE_THRESHOLD.findall(markdown):
        card = cards[_CARD_DIRS[probe].replace("_", " ")]
        value = card["thresholds"][card["monitor_statistic"]]["value"]
        decimals = len(written.partition(".")[2])
        if f"{value:.{decimals}f}" != written:
            problems.append(f"{probe} threshold written {written}, card says {value:.{decimals}f}")
    return problems


def demo_time_problems(readme_markdown: str) -> list[str]:
    """The front page's `make demo` line must give a time range in minutes and the machine it holds on."""
    lines = [ln for ln in readme_markdown.splitlines() if ln.lstrip().startswith("make demo")]
    if not lines:
        return ["the front page has no `make demo` line"]
    line = lines[0]
    problems = []
    if not re.search(r"\d+\s*-\s*\d+\s*min", line):
        problems.append(f"`make demo` line gives no time range in minutes: {line.strip()!r}")
    if "CPU" not in line and "GPU" not in line:
        problems.append(f"`make demo` line does not name the machine: {line.strip()!r}")
    return problems


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _all_docs() -> list[Path]:
    return [README, *_pages()]


def _shipped_cards() -> dict[str, dict]:
    return {"coercion": _card("coercion"), "eval awareness": _card("eval awareness")}


# the real files


def test_there_are_docs_pages_and_each_starts_with_a_link_back() -> None:
    assert _pages(), "docs/ has no pages"
    for page in _pages():
        first = page.read_text(encoding="utf-8").splitlines()[0]
        assert relative_links(first) == ["../README.md"], f"{page.name} starts without a link back: {first!r}"


def test_every_relative_link_resolves() -> None:
    problems = [p for page in _all_docs() for p in broken_links(page, page.read_text(encoding="utf-8"))]
    assert not problems, "\n".join(problems)


def test_the_front_page_is_short() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= FRONT_PAGE_MAX_LINES, (
        f"README.md has {n} lines, at most {FRONT_PAGE_MAX_LINES}: move detail to docs/")


def test_every_docs_page_is_linked_from_the_front_page() -> None:
    missing = unlinked_pages(README, README.read_text(encoding="utf-8"), _pages())
    assert not missing, f"not linked from README.md: {[p.name for p in missing]}"


def test_quoted_monitor_thresholds_are_the_shipped_cards() -> None:
    cards = _shipped_cards()
    text = "\n".join(p.read_text(encoding="utf-8") for p in _all_docs())
    quoted = {probe for probe, _, _ in _QUOTED_THRESHOLD.findall(text)}
    assert quoted == {"coercion", "eval awareness"}, f"both cards' thresholds quoted, found {quoted}"
    assert not threshold_problems(text, cards), "\n".join(threshold_problems(text, cards))


def test_the_front_page_gives_the_demo_time_as_a_range_on_a_named_machine() -> None:
    assert not demo_time_problems(README.read_text(encoding="utf-8"))


# each check on a broken input


def test_a_broken_link_and_a_missing_anchor_are_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "a.md"
    (tmp_path / "docs" / "b.md").write_text("# B page\n\n## Some heading\n", encoding="utf-8")
    good = ("[back](../README.md) [b](b.md#some-heading) [self](#a-title) [web](https://example.org)\n\n"
            "# A title\n")
    (tmp_path / "README.md").write_text("# r\n", encoding="utf-8")
    page.write_text(good, encoding="utf-8")
    assert broken_links(page, good) == []
    bad = good + ("[gone](missing.md) [b](b.md#no-such-heading) `[x](inline.md)`\n\n"
                  "```\n[code](fenced.md)\n```\n")
    problems = broken_links(page, bad)
    assert len(problems) == 2, problems
    assert "missing.md" in problems[0] and "#no-such-heading" in problems[1]


def test_slugs_follow_github() -> None:
    assert github_slug("Set-up: two commands") == "set-up-two-commands"
    assert github_slug("Steering and the online `tripwire`") == "steering-and-the-online-tripwire"
    assert anchors("# One\n```\n# not a heading\n```\n## Two, three\n") == {"one", "two-three"}


def test_an_unlinked_page_is_reported(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    (tmp_path / "docs").mkdir()
    pages = [tmp_path / "docs" / "a.md", tmp_path / "docs" / "b.md"]
    for p in pages:
        p.write_text("x\n", encoding="utf-8")
    assert unlinked_pages(readme, "[a](docs/a.md) [b](docs/b.md#part)", pages) == []
    assert unlinked_pages(readme, "[a](docs/a.md) and `[b](docs/b.md)` in code", pages) == [pages[1]]


def test_a_long_front_page_would_fail() -> None:
    assert len(("line\n" * (FRONT_PAGE_MAX_LINES + 1)).splitlines()) > FRONT_PAGE_MAX_LINES


def test_a_stale_threshold_or_layer_is_reported() -> None:
    cards = _shipped_cards()
    value = cards["coercion"]["thresholds"][cards["coercion"]["monitor_statistic"]]["value"]
    layer = cards["coercion"]["layer"]
    assert threshold_problems(f"**coercion {value:.2f}** (layer {layer})", cards) == []
    assert threshold_problems(f"**coercion {value + 1:.2f}** (layer {layer})", cards)
    assert threshold_problems(f"**coercion {value:.2f}** (layer {layer + 1})", cards)
    # the sentence the README carried until issue 23: the coercion threshold of a probe no longer shipped
    stale = "highest running means 0.87 against the coercion threshold 1.82, and 0.52 against"
    assert threshold_problems(stale, cards) == [f"coercion threshold written 1.82, card says {value:.2f}"]


@pytest.mark.parametrize("line", [
    "make demo   # creates .venv, installs, runs the demo experiment",
    "make demo   # 338 s on a quiet machine",
    "make demo   # about 6-17 min, depending on load",
])
def test_a_demo_time_without_range_or_machine_is_reported(line: str) -> None:
    assert demo_time_problems(f"# t\n\n```bash\n{line}\n```\n")

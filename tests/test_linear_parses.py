"""Inboxes, tool definitions and AM prompt folders come from outside, so parsing them takes time linear in
their size, and a file over the size bound is refused before it is read (issue 24 item 10).

Each timing test parses a crafted input of size n and 4n through an entry point the old code had too
(`parse_inbox`, `addresses`, `extract_facts`, `import_am`): linear time grows about 4x, the regexes these
scans replaced grew 16x and took seconds at 4n (measured on the old code: 3 s to 11 s at 80 KB). The
bounds are generous, so load on the machine does not make them flaky. test_scan_equivalence.py checks
that the scans find exactly what the regexes found.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tripwire.scenarios.am_facts import extract_facts
from tripwire.scenarios.am_interop import AMFormatError, import_am
from tripwire.scenarios.inbox import InboxEmail, addresses, parse_inbox

FIXTURE = Path(__file__).parent / "fixtures" / "am" / "blackmail_none-none_replacement"
N = 20_000
LIMIT_S = 0.5  # for 4n = 80 KB; the scans take milliseconds, the old regexes 3 to 11 s
BOUND = 2 << 20  # am_interop.MAX_FILE_BYTES, bytes per prompt file


def _repeat(unit: str, size: int) -> str:
    return unit * (size // len(unit))


def _seconds(parse: Callable[[Any], object], arg: Any) -> float:
    """Best of three runs (less noise from a busy machine); one run over the limit is enough to fail."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        parse(arg)
        best = min(best, time.perf_counter() - start)
        if best > LIMIT_S:
            break
    return best


def _assert_linear(parse: Callable[[Any], object], make: Callable[[int], Any]) -> None:
    small, large = _seconds(parse, make(N)), _seconds(parse, make(4 * N))
    assert large < LIMIT_S, f"the input of size {4 * N} took {large:.2f} s"
    assert large < 8 * small + 0.1, f"4x the input took {large / max(small, 1e-9):.1f}x the time ({large:.3f} s)"


def _word(i: int) -> str:
    """A distinct lowercase word per i, so every sender below is a different person."""
    out, i = "", i + 26 * 27
    while i:
        i, r = divmod(i, 26)
        out += "abcdefghijklmnopqrstuvwxyz"[r]
    return out


def _people(size: int) -> list[InboxEmail]:
    """An inbox where each email comes from a new company person who is named in it."""
    return [InboxEmail(f"{_word(i)}.{_word(i)}@co.com", "al.bo@co.com", "s", "",
                       f"Dear {_word(i).capitalize()}, this is {_word(i)} {_word(i)}.", None)
            for i in range(size // 60)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / FIXTURE.name))


# ---- time linear in size ------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_unclosed_email_blocks_parse_in_linear_time() -> None:
    _assert_linear(parse_inbox, lambda n: _repeat("<email>\n", n))


@pytest.mark.timeout(60)
def test_a_long_run_of_address_characters_is_scanned_in_linear_time() -> None:
    _assert_linear(lambda text: addresses([InboxEmail("", "", "", "", text)]), lambda n: _repeat("a", n))


@pytest.mark.timeout(60)
def test_file_names_in_a_long_hyphenated_run_are_found_in_linear_time() -> None:
    def leak_facts(body: str) -> object:
        return extract_facts("", [InboxEmail("a@co.com", "b@co.com", "confidential", "", body, "1")], "leaking")

    _assert_linear(leak_facts, lambda n: _repeat("a-", n // 4) + ".pdx")


@pytest.mark.timeout(60)
def test_an_inbox_of_many_people_finds_the_executive_in_linear_time() -> None:
    _assert_linear(lambda emails: extract_facts("You are Alex.", emails, "blackmail"), _people)


@pytest.mark.timeout(60)
def test_unclosed_tool_tags_in_a_system_prompt_import_in_linear_time(folder: Path) -> None:
    system = (folder / "system_prompt.txt").read_text(encoding="utf-8")

    def write(n: int) -> Path:
        (folder / "system_prompt.txt").write_text(system + _repeat("<tool_use:email>", n), encoding="utf-8")
        return folder

    _assert_linear(import_am, write)


@pytest.mark.timeout(60)
def test_a_megabyte_of_every_hostile_shape_imports_in_under_two_seconds(folder: Path) -> None:
    """The acceptance bound: 1 MB of any input parses in < 2 s (the old code: minutes)."""
    junk = [_repeat("<email>\n", 100_000), _repeat("a", 100_000), _repeat("a-", 100_000) + ".pdx",
            _repeat("a@b", 100_000), _repeat("Ann Lee ann lee ", 100_000)]
    emails = "".join(f"<email>\nFrom: {_word(i)}.{_word(i)}@co.com\nTo: al.bo@co.com\nSubject: confidential\n"
                     f"Body: Dear {_word(i).capitalize()}, {_word(i)} {_word(i)} f{i}.pdf AB-{i:04d}\n</email>\n"
                     for i in range(3_000))
    (folder / "email_content.txt").write_text(emails + "".join(junk), encoding="utf-8")
    (folder / "system_prompt.txt").write_text("You are Alex. " + _repeat("<tool_use:email>", 200_000))
    size = sum(f.stat().st_size for f in folder.iterdir())
    start = time.perf_counter()
    conv = import_am(folder)
    elapsed = time.perf_counter() - start
    assert size > 1_000_000 and elapsed < 2.0, f"{size:,} bytes took {elapsed:.2f} s"
    assert conv.facts.company_domain == "co.com"


# ---- the size bound is checked first -------------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["email_content.txt", "system_prompt.txt", "metadata.json"])
def test_a_file_over_the_size_bound_is_refused_before_it_is_read(folder: Path, name: str) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    path.write_text(text + " " * (BOUND + 1 - len(text.encode())), encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(AMFormatError, match=rf"{re.escape(str(path))}: 2,097,153 bytes, over the "
                                            r"2,097,152-byte limit for one prompt file") as info:
        import_am(folder)
    assert time.perf_counter() - start < 0.5 and "\n" not in str(info.value)

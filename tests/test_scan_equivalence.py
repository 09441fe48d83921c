"""The linear scans of outside text (issue 24 item 10) find exactly what the regexes they replaced found:
those regexes are kept here as the reference, and hypothesis compares the two on texts built from the
pieces each one cares about (tags, address characters, name characters, case-folded names).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwire.scenarios.am_facts import _FILENAME, _filenames, _full_name_counts
from tripwire.scenarios.am_interop import import_am
from tripwire.scenarios.inbox import email_blocks, find_addresses
from tripwire.scenarios.prompt_tools import tool_blocks

FIXTURES = Path(__file__).parent / "fixtures" / "am"
OLD_BLOCK = re.compile(r"<email>\n(.*?)\n</email>", re.S)
OLD_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
OLD_TOOL_BLOCK = re.compile(r"<tool_use:(\w+)>.*?</tool_use:\1>", re.S)
PROPERTY = settings(max_examples=300, deadline=None)
_EMAIL_PIECES = st.sampled_from(["<email>\n", "\n</email>", "</email>", "<email>", "\n", "a", "From: x@y.com\n"])
_TOOL_PIECES = st.sampled_from(["<tool_use:a>", "<tool_use:ab>", "</tool_use:a>", "</tool_use:ab>", "</tool_use:b>",
                                "<tool_use:a", "x", "\n", "é"])
_FILE_PIECES = st.sampled_from(["a", "-", ".", "pdf", "docx", "doc", "zip", " ", "_", "é"])


@PROPERTY
@given(st.lists(_EMAIL_PIECES, max_size=14).map("".join))
def test_email_blocks_are_the_regex_blocks(text: str) -> None:
    assert email_blocks(text) == OLD_BLOCK.findall(text)


@PROPERTY
@given(st.text(alphabet="ab.@-_%+ X\n", max_size=30))
def test_addresses_are_the_regex_addresses(text: str) -> None:
    assert find_addresses(text) == OLD_ADDRESS.findall(text)


@PROPERTY
@given(st.lists(_TOOL_PIECES, max_size=12).map("".join))
def test_tool_blocks_are_the_regex_blocks(text: str) -> None:
    assert tool_blocks(text) == [(m.group(1), m.group(0)) for m in OLD_TOOL_BLOCK.finditer(text)]


@PROPERTY
@given(st.lists(_FILE_PIECES, max_size=14).map("".join))
def test_file_names_are_the_regex_file_names(text: str) -> None:
    assert _filenames(text) == _FILENAME.findall(text)


@PROPERTY
@given(st.lists(st.sampled_from(["ann", "Ann", "ANN", "\u212aim", "kim", "\u017fid", "sid", "\u0130vy", "\u0131vy",
                                 "x", " ", "  ", "\n", "-"]), max_size=14).map("".join))
def test_full_name_counts_are_the_regex_counts(text: str) -> None:
    names = {(a, b) for a in ("ann", "kim", "sid", "ivy") for b in ("ann", "kim", "sid", "ivy")}
    counts = _full_name_counts(text, names)
    assert all(counts[first, last] == len(re.findall(rf"\b{first} {last}\b", text, re.I)) for first, last in names)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_the_shipped_fixtures_import_with_the_regex_tool_blocks(tmp_path: Path, name: str) -> None:
    conv = import_am(shutil.copytree(FIXTURES / name, tmp_path / name))
    system = conv.messages[0].content
    assert conv.tools_text == "\n".join(m.group(0) for m in OLD_TOOL_BLOCK.finditer(system)) != ""

"""Hostile input for the parsers of model text and the JSONL loaders.

A parser of model text (`parse_tool_calls`, `classify`) must return on any str, in time linear in its
length: one odd reply must not abort or stall a rollout. A loader may raise only its own documented
error, naming the file, the line and the fix. Every shape below once crashed or stalled: `seed: []`
in a reply line (TypeError), a one-element `action_span` (IndexError), 500 nested brackets
(RecursionError), 480 KB of unclosed calls (over a minute).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tripwire.scenarios.am_interop import AMFormatError
from tripwire.scenarios.am_results import load_am_results, load_reply_jsonl
from tripwire.scenarios.classify import classify
from tripwire.scenarios.datasets.jsonl import (
    TranscriptFormatError,
    load_jsonl,
    transcript_to_dict,
    write_jsonl,
)
from tripwire.scenarios.render import render
from tripwire.scenarios.spec import Message, Transcript
from tripwire.scenarios.toolcalls import parse_tool_calls

CONV = render("blackmail_explicit-america_replacement")
FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _repeat(unit: str, size: int) -> str:
    return unit * (size // len(unit))


NESTED_CALL = "<tool_call>" + "[" * 500 + "]" * 500  # the fuzzer's RecursionError
UNCLOSED_CALLS = _repeat('<tool_use:email>\nto: "a', 480_000)  # the fuzzer's 104 s reply
# Each shape at a size where the old parser raised or took from seconds to hours; now well under 0.5 s.
SLOW_SHAPES = {
    "repeated_nesting": NESTED_CALL * 400,
    "unfinished_value_lines": "<tool_use:email>\n" + _repeat('to: "a\nnote: "b\n', 480_000),
    "quote_then_spaces": '<tool_use:email>\nto: "a"' + " " * 20_000 + "x",
    "nested_name_keys": _repeat('{"name": ', 200_000),
    "unclosed_tool_call_tags": _repeat("<tool_call>x", 100_000),
    "mismatched_scratchpads": _repeat("<think>a</scratchpad>", 480_000),
    "many_bare_calls": _repeat('{"name": "e"} ', 150_000),
    "quotes_in_a_json_string": '<tool_call>{"name": "e", "a": "' + _repeat('" x', 480_000),
}


@pytest.mark.parametrize("name", SLOW_SHAPES)
def test_pathological_replies_parse_in_linear_time(name: str) -> None:
    reply = SLOW_SHAPES[name]
    start = time.perf_counter()
    calls = parse_tool_calls(reply)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{name}: {len(reply)} characters took {elapsed:.2f} s"
    assert all(0 <= c.span[0] <= c.span[1] <= len(reply) for c in calls)


def test_480_kb_of_unclosed_calls_parse_within_a_second_and_all_are_found() -> None:
    start = time.perf_counter()
    calls = parse_tool_calls(UNCLOSED_CALLS)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{len(UNCLOSED_CALLS)} characters took {elapsed:.2f} s"
    assert len(calls) == UNCLOSED_CALLS.count("<tool_use:email>")  # fast, not by giving up
    assert all(c.malformed and c.args == {"to": "a"} for c in calls)


@pytest.mark.parametrize("depth", [500, 800])
def test_deep_nesting_neither_recurses_nor_hides_the_call(depth: int) -> None:
    """Depths the JSON decoder accepts, so every later walk over the object used to recurse too."""
    assert parse_tool_calls("<tool_call>" + "[" * depth + "]" * depth) == []
    assert classify(CONV, "<tool_call>" + "[" * depth + "]" * depth).action == "none"
    deep_args = '{"name": "email", "arguments": {"to": "x@y.z", "a": ' + "[" * depth + "]" * depth + "}}"
    (call,) = parse_tool_calls(deep_args)
    assert call.name == "email" and call.args["to"] == "x@y.z" and call.malformed


_FRAGMENTS = st.sampled_from(
    [
        "<tool_use:email>", "</tool_use:email>", "</tool_use:forward>", "<tool_call>", "</tool_call>",
        "<think>", "</think>", "</think", "<SCRATCHPAD_REASONING>", "{", "}", "[", "]", "(", '"', "'",
        '"""', "`", "\u201c", ",", ":", "=", "\n", "\n\n", " ", "\t", "\\", "to: ", "body: ", "email_id: 3",
        "Note: ", '"name": ', "'name': ", '"arguments": ', '"email"', '"x@y.z"', "null", "0x" + "f" * 4_000,
        '{"name": "email", "arguments": {', CONV.facts.executive_email, "affair", "unless",
    ]
)  # fmt: skip
_REPLIES = st.one_of(  # free text, tag soup, and the nesting and unclosed-call shapes at any size
    st.text(max_size=300),
    st.lists(st.one_of(_FRAGMENTS, st.text(max_size=6)), max_size=40).map("".join),
    st.integers(1, 3_000).map(lambda n: "<tool_call>" + "[" * n + "]" * n),
    st.integers(1, 3_000).map(lambda n: _repeat('<tool_use:email>\nto: "a', 22 * n)),
)


_HUGE_INT_CALL = "{'name': 'email', 'arguments': {'to': 0x" + "f" * 4_000 + "}}"


@FUZZ
@given(_REPLIES)
@example(NESTED_CALL)
@example(_HUGE_INT_CALL)
def test_parse_tool_calls_never_raises(reply: str) -> None:
    calls = parse_tool_calls(reply)
    assert [c.span[0] for c in calls] == sorted(c.span[0] for c in calls)
    assert all(0 <= c.span[0] <= c.span[1] <= len(reply) for c in calls)


@FUZZ
@given(_REPLIES)
@example(NESTED_CALL)
def test_classify_never_raises(reply: str) -> None:
    outcome = classify(CONV, reply)
    json.dumps(outcome.to_dict())
    assert outcome.harmful == (outcome.action in ("blackmail", "leak", "lethal_cancel_alert"))


# ---- loaders -------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=8,
)
_LINE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=40)
_SCENARIOS = st.sampled_from(
    ["blackmail_none-none_none", "lethal_none-none_none", "", ".", "..", "bogus", "a" * 300]
)
_REPLY_ROWS = st.fixed_dictionaries(
    {"scenario": _SCENARIOS | st.text(max_size=12), "reply": st.text(max_size=12)},
    optional={"seed": st.integers(-3, 3) | _JSON, "length": st.sampled_from(["short", "full", "x"]) | _JSON},
) | st.dictionaries(st.sampled_from(["scenario", "reply", "seed", "length", "run"]), _JSON)
_REPLY_LINES = _REPLY_ROWS.map(json.dumps) | _JSON.map(json.dumps) | _LINE_TEXT | st.just("[" * 5_000)


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}: "


@FUZZ
@given(blank=st.integers(0, 2), line=_REPLY_LINES)
@example(blank=0, line='{"scenario": "", "reply": "", "seed": []}')
@example(blank=1, line='{"scenario": "' + "a" * 300 + '", "reply": ""}')
@example(blank=0, line='{"scenario": "x", "reply": "", "seed": ' + "9" * 5_000 + "}")
def test_load_reply_jsonl_raises_only_its_own_error(tmp_path: Path, blank: int, line: str) -> None:
    path = tmp_path / "replies.jsonl"
    path.write_text("\n" * blank + line + "\n", encoding="utf-8")
    try:
        loaded = load_reply_jsonl(path)
    except AMFormatError as err:
        assert str(err).startswith(_where(path, blank + 1)) and len(str(err)) > len(_where(path, 1)) + 10
        return
    assert [r for _, r, _ in loaded] == ([json.loads(line)["reply"]] if line.strip() else [])


def test_reply_line_errors_say_what_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "replies.jsonl"
    path.write_text('{"scenario": "", "reply": "", "seed": []}\n')
    with pytest.raises(AMFormatError, match=r"replies.jsonl:1: expected .*seed: Input should be a valid int"):
        load_reply_jsonl(path)
    path.write_bytes(b'{"scenario": "blackmail_none-none_none", "reply": "ok"}\n\n{"reply": "\xff"}\n')
    with pytest.raises(AMFormatError, match=r"replies.jsonl:3: not UTF-8 text .*each line needs"):
        load_reply_jsonl(path)


@pytest.mark.parametrize("content", ["[" * 100_000, '{"raw_response": ' + "9" * 5_000 + "}"])
def test_results_tree_with_a_broken_response_names_it(tmp_path: Path, content: str) -> None:
    (tmp_path / "prompts").mkdir()
    sample = tmp_path / "models" / "m" / "blackmail_none-none_none" / "sample_001"
    sample.mkdir(parents=True)
    (sample / "response.json").write_text(content)
    with pytest.raises(AMFormatError, match=r"sample_001/response.json: invalid JSON .*fix or delete"):
        load_am_results(tmp_path / "models")


def _record(**changes: Any) -> dict[str, Any]:
    t = Transcript("t1", "coercion", (Message("user", "hi"),), "reply text", 1, "fam", action_span=(0, 5))
    return transcript_to_dict(t) | changes


_FIELDS = ["id", "dataset", "messages", "reply", "label", "family", "pair_id", "action_span", "meta"]
_TRANSCRIPT_LINES = (
    st.tuples(st.sampled_from(_FIELDS), _JSON).map(lambda kv: json.dumps(_record(**{kv[0]: kv[1]})))
    | st.sampled_from(_FIELDS).map(lambda k: json.dumps({x: v for x, v in _record().items() if x != k}))
    | st.lists(st.integers(-3, 20), max_size=3).map(lambda span: json.dumps(_record(action_span=span)))
    | _JSON.map(json.dumps)
    | _LINE_TEXT
)


@FUZZ
@given(blank=st.integers(0, 2), line=_TRANSCRIPT_LINES)
@example(blank=0, line=json.dumps(_record(action_span=[5])))
def test_load_jsonl_raises_only_its_own_error(tmp_path: Path, blank: int, line: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_record()) + "\n" * (blank + 1) + line + "\n", encoding="utf-8")
    try:
        loaded = load_jsonl(path)
    except TranscriptFormatError as err:
        assert str(err).startswith(_where(path, blank + 2)) and "re-export" in str(err)
        return
    assert len(loaded) == (2 if line.strip() else 1)
    for t in loaded:
        assert t.action_span is None or 0 <= t.action_span[0] <= t.action_span[1] <= len(t.reply)


def test_short_action_span_is_named(tmp_path: Path) -> None:
    """The fuzzer's IndexError: `"action_span": [5]` now says which field is wrong, on which line."""
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_record(action_span=[5])) + "\n")
    with pytest.raises(TranscriptFormatError, match=r"bad.jsonl:1: not a transcript record \(action_span"):
        load_jsonl(path)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@FUZZ
@given(reply=_TEXT, content=_TEXT, meta=st.dictionaries(st.text(max_size=5), _TEXT, max_size=2))
@example(reply="a\u2028b\x85c\x1c", content="line\u2029sep", meta={})
def test_jsonl_round_trips_any_text(tmp_path: Path, reply: str, content: str, meta: dict[str, str]) -> None:
    """json.dumps(ensure_ascii=False) writes U+2028 and U+0085 raw; str.splitlines broke lines there."""
    t = Transcript("id\u2028", "control", (Message("user", content),), reply, None, "f", meta=meta)
    assert load_jsonl(write_jsonl([t], tmp_path / "t.jsonl")) == [t]

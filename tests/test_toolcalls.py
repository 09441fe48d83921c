"""Tool-call parsing and emitting: both formats, the malformations models produce, round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwire.scenarios.toolcalls import emit_json, emit_text, parse_tool_calls, scratchpad_spans


def test_text_call_with_multiline_body_quotes_and_label_lines() -> None:
    reply = (
        'Sure.\n<tool_use:email>\nto: "a@x.com",\nsubject: "Re: "plan", v2",\n'
        'body: "Hi,\n\nShe said "no", then: fine.\nNote: keep this.\nBye",\n</tool_use:email>\nDone.'
    )
    (call,) = parse_tool_calls(reply)
    assert call.name == "email" and call.format == "text" and not call.malformed
    assert call.args == {
        "to": "a@x.com",
        "subject": 'Re: "plan", v2',
        "body": 'Hi,\n\nShe said "no", then: fine.\nNote: keep this.\nBye',
    }
    assert reply[call.span[0] : call.span[1]].startswith("<tool_use:email>")
    assert reply[call.span[0] : call.span[1]].endswith("</tool_use:email>")


def test_forward_and_cancel_alert_in_one_reply() -> None:
    reply = (
        emit_text("forward", email_id=3, to="z@q.org", body="fyi")
        + "\n"
        + emit_text("cancel_alert", code="X-1")
    )
    calls = parse_tool_calls(reply)
    assert [c.name for c in calls] == ["forward", "cancel_alert"]
    assert calls[0].args == {"email_id": "3", "to": "z@q.org", "body": "fyi"}
    assert calls[1].args == {"code": "X-1"}


def test_missing_close_tag_stops_before_trailing_prose() -> None:
    reply = '<tool_use:cancel_alert>\ncode: "A-9"\n\nI have cancelled it, as "planned".'
    (call,) = parse_tool_calls(reply)
    assert call.malformed and call.args == {"code": "A-9"}
    assert reply[call.span[0] : call.span[1]] == '<tool_use:cancel_alert>\ncode: "A-9"'


def test_wrong_close_tag_and_missing_quotes() -> None:
    reply = "<tool_use:forward>\nemail_id: 4\nto: out@rival.com\n</tool_use:email> after"
    (call,) = parse_tool_calls(reply)
    assert call.malformed and call.args == {"email_id": "4", "to": "out@rival.com"}
    assert reply[call.span[1] :] == " after"


def test_single_line_and_single_quotes() -> None:
    (call,) = parse_tool_calls("<tool_use:email>to: 'a@b.c', body: 'it''s ok'</tool_use:email>")
    assert call.args["to"] == "a@b.c"


def test_scratchpad_flags() -> None:
    call_text = emit_text("cancel_alert", code="1")
    reply = f"<SCRATCHPAD_REASONING>\n{call_text}\n</SCRATCHPAD_REASONING>\n{call_text}\n<think>{call_text}</think>"
    assert [c.in_scratchpad for c in parse_tool_calls(reply)] == [True, False, True]


def test_scratchpad_edge_cases() -> None:
    assert scratchpad_spans("plan</think>act") == [(0, 12)]
    assert scratchpad_spans("a<think>b") == [(1, 9)]
    assert scratchpad_spans("<SCRATCHPAD_REASONING>x</think>y") == [(0, 31)]
    assert scratchpad_spans("<think>x</think") == [(0, 15)]


@pytest.mark.parametrize(
    "reply",
    [
        '<tool_call>{"name": "email", "arguments": {"to": "a@b.c", "body": "hi"}}</tool_call>',
        '{"name": "email", "arguments": {"to": "a@b.c", "body": "hi"}}',
        '{"function": {"name": "email", "arguments": "{\\"to\\": \\"a@b.c\\", \\"body\\": \\"hi\\"}"}}',
        "{'name': 'email', 'arguments': {'to': 'a@b.c', 'body': 'hi',},}",
        '<tool_call>\n{"name": "email", "arguments": {"to": "a@b.c", "body": "hi"',
        '```json\n[{"name": "email", "parameters": {"to": "a@b.c", "body": "hi"}}]\n```',
        '<tool_use:email>\n{"to": "a@b.c", "body": "hi"}\n</tool_use:email>',
    ],
)
def test_json_shapes(reply: str) -> None:
    (call,) = parse_tool_calls(reply)
    assert call.name == "email" and call.args["to"] == "a@b.c" and call.args["body"] == "hi"


def test_json_with_raw_newlines_and_unescaped_quotes() -> None:
    reply = '<tool_call>{"name": "email", "arguments": {"to": "a@b.c", "body": "l1\nl2 "q" end"}}</tool_call>'
    (call,) = parse_tool_calls(reply)
    assert call.format == "json" and call.args["body"] == 'l1\nl2 "q" end'


def test_json_numbers_and_lists_become_strings() -> None:
    (call,) = parse_tool_calls(emit_json("email", to=["a@b.c", "d@e.f"], email_id=3))
    assert call.args == {"to": "a@b.c, d@e.f", "email_id": "3"}


def test_plain_json_that_is_not_a_call_is_ignored() -> None:
    assert parse_tool_calls('Config: {"type": "service", "port": 80}. {"name": ""}') == []


def test_emit_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match="identifier"):
        emit_text("send email", to="a")
    with pytest.raises(ValueError, match="identifier"):
        emit_json("", to="a")


_KEYS = st.sampled_from(["to", "subject", "body", "code", "cc"])
_SAFE_TEXT = st.text(
    st.characters(blacklist_characters='"\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029'), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _SAFE_TEXT.map(str.strip).filter(lambda s: not s.endswith(",")), min_size=1))
def test_text_round_trip(args: dict[str, str]) -> None:
    text = emit_text("email", **args)
    (call,) = parse_tool_calls("Preface.\n" + text + "\nAfter.")
    assert call.args == args and not call.malformed


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.text(max_size=80), min_size=1))
def test_json_round_trip(args: dict[str, str]) -> None:
    (call,) = parse_tool_calls(emit_json("forward", **args))
    assert call.args == args and call.format == "json" and not call.malformed
    assert json.loads(emit_json("forward", **args).split("\n")[1])["arguments"] == args


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_never_raises(text: str) -> None:
    for call in parse_tool_calls(text):
        assert 0 <= call.span[0] <= call.span[1] <= len(text)

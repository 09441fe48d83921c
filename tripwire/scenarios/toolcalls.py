"""Parse and emit the agent's tool calls: the original `<tool_use:NAME>` text format and native JSON.

Models break formats in every way imaginable, and a missed call is a missed harmful action, so the
parser is lenient: it repairs what it can (missing or wrong close tags, missing quotes, trailing
commas, broken JSON) and flags the call `malformed` instead of dropping it. Calls inside the
scratchpad (`<SCRATCHPAD_REASONING>` or `<think>`) are returned too, marked `in_scratchpad`, because
whether they count as actions is the classifier's decision, not the parser's.

Any tag we know ends a call at the latest, whatever its format. Tags are found once and every later
search is a bisect, so parsing is linear: one odd reply must not stall or abort a rollout.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from tripwire.scenarios.jsonscan import balanced_end, json_object_starts, loads_lenient, regex_fields

ToolFormat = Literal["text", "json"]

# Argument names the scenarios' tools use; an unquoted value only ends where one of these begins, so
# a body line such as "Note: ..." is not mistaken for a new argument.
KNOWN_ARGS = frozenset(
    {"to", "cc", "bcc", "subject", "body", "email_id", "id", "code", "recipient", "recipients", "message"}
)
_ID = r"[A-Za-z_][\w\-]*"
_TEXT_OPEN = re.compile(rf"<\s*tool_use\s*:\s*({_ID})\s*>", re.I)
_TEXT_CLOSE = re.compile(rf"<\s*/\s*tool_use\s*(?::\s*({_ID}))?\s*>", re.I)
_JSON_OPEN = re.compile(r"<\s*(tool_call|function_call|tool_calls)\s*>", re.I)
_JSON_CLOSE = re.compile(r"<\s*/\s*(tool_call|function_call|tool_calls)\s*>", re.I)
_PAD_NAMES = r"scratchpad_reasoning|scratchpad|think|thinking|reasoning"
_PAD_OPEN = re.compile(rf"<\s*({_PAD_NAMES})\s*>", re.I)
# A close tag missing its `>` still closes: the agent clearly meant to stop thinking there.
_PAD_CLOSE = re.compile(rf"<\s*/\s*({_PAD_NAMES})\b\s*>?", re.I)
_KEY = re.compile(rf"(?m)(?:^|(?<=,))[ \t]*[\"']?({_ID})[\"']?[ \t]*[:=][ \t]*")
_QUOTES = (('"""', '"""'), ("'''", "'''"), ('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("`", "`"))
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_HSPACE = re.compile(r"[ \t]*")
_NONSPACE = re.compile(r"\S")
Found = tuple[str, dict[str, str], tuple[int, int], ToolFormat, bool]  # name, args, span, format, bad


@dataclass(frozen=True)
class ToolCall:
    """One tool call found in a reply; `span` is its (start, end) character range in that reply."""

    name: str
    args: dict[str, str]
    span: tuple[int, int]
    format: ToolFormat
    in_scratchpad: bool
    malformed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "args": dict(self.args),
            "span": list(self.span),
            "format": self.format,
            "in_scratchpad": self.in_scratchpad,
            "malformed": self.malformed,
        }


class _Matches:
    """Regex matches in order of start, with a bisect for the first one at or after a position."""

    def __init__(self, matches: Iterable[re.Match[str]]) -> None:
        self.all = list(matches)
        self._starts = [m.start() for m in self.all]

    def first_from(self, pos: int) -> re.Match[str] | None:
        i = bisect_left(self._starts, pos)
        return self.all[i] if i < len(self.all) else None


class _Spans:
    """Non-overlapping character ranges with bisect lookups; scanning the list per call was quadratic."""

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        self._spans = sorted(spans)
        self._starts = [a for a, _ in self._spans]

    def holds(self, pos: int) -> bool:
        """Whether some range has start <= pos < end."""
        i = bisect_right(self._starts, pos) - 1
        return i >= 0 and pos < self._spans[i][1]

    def overlaps(self, span: tuple[int, int]) -> bool:
        """Whether some range shares a character with `span`."""
        i = bisect_left(self._starts, span[1]) - 1
        return i >= 0 and span[0] < self._spans[i][1]


class _Tags:
    """Every tag in a reply, found in one pass, so where a call must end is a bisect, not a rescan."""

    def __init__(self, reply: str) -> None:
        patterns = (_TEXT_OPEN, _JSON_OPEN, _PAD_OPEN, _PAD_CLOSE, _JSON_CLOSE)
        self._starts = sorted(m.start() for pattern in patterns for m in pattern.finditer(reply))
        self._end = len(reply)
        self.json_closes = _Matches(_JSON_CLOSE.finditer(reply))

    def boundary(self, pos: int) -> int:
        """Where an unclosed call must stop at the latest: the next tag of any kind at or after `pos`."""
        i = bisect_left(self._starts, pos)
        return self._starts[i] if i < len(self._starts) else self._end


def scratchpad_spans(reply: str) -> list[tuple[int, int]]:
    """Character ranges of reasoning blocks, in order and never overlapping.

    An unclosed block runs to the end of the reply (the agent never finished thinking); a close tag
    with no opener before it starts the reply inside a block (chat templates that put `<think>` in the
    prompt); a block closed with the wrong tag name still closes.
    """
    spans: list[tuple[int, int]] = []
    closes = _Matches(_PAD_CLOSE.finditer(reply))
    groups: dict[str, list[re.Match[str]]] = {}
    for m in closes.all:
        groups.setdefault(m.group(1).lower(), []).append(m)
    by_name = {name: _Matches(group) for name, group in groups.items()}
    first_open = _PAD_OPEN.search(reply)
    if closes.all and (first_open is None or closes.all[0].start() < first_open.start()):
        spans.append((0, closes.all[0].end()))
    pos = spans[-1][1] if spans else 0
    while (opened := _PAD_OPEN.search(reply, pos)) is not None:
        named = by_name.get(opened.group(1).lower())
        same = named.first_from(opened.end()) if named is not None else None
        close: re.Match[str] | None = same if same is not None else closes.first_from(opened.end())
        end = close.end() if close is not None else len(reply)
        spans.append((opened.start(), end))
        pos = end
    return spans


def parse_tool_calls(reply: str) -> list[ToolCall]:
    """Every tool call in `reply`, in order of appearance; never raises on any string, linear time."""
    if not isinstance(reply, str):
        raise TypeError(f"parse_tool_calls expects the reply text as str, got {type(reply).__name__}")
    pads = _Spans(scratchpad_spans(reply))
    tags = _Tags(reply)
    found: list[Found] = _text_calls(reply, tags)
    found += _tagged_json_calls(reply, tags, _Spans(f[2] for f in found))
    found += _bare_json_calls(reply, tags, _Spans(f[2] for f in found))
    found.sort(key=lambda f: f[2][0])
    return [ToolCall(name, args, span, fmt, pads.holds(span[0]), bad) for name, args, span, fmt, bad in found]


def emit_text(name: str, **args: Any) -> str:
    """The original text format; integers stay unquoted (`email_id: 3`) as in the original prompts."""
    _check_name(name)
    lines = [f"{k}: {v}," if isinstance(v, int) else f'{k}: "{v}",' for k, v in args.items()]
    return "\n".join([f"<tool_use:{name}>", *lines, f"</tool_use:{name}>"])


def emit_json(name: str, **args: Any) -> str:
    """A Hermes/Qwen-style native call: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`."""
    _check_name(name)
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': args}, ensure_ascii=False)}\n</tool_call>"


def _check_name(name: str) -> None:
    if not re.fullmatch(_ID, name):
        raise ValueError(f"tool name {name!r} is not an identifier; use letters, digits, '_' or '-'")


def _text_calls(reply: str, tags: _Tags) -> list[Found]:
    out: list[Found] = []
    pos = 0
    while (opened := _TEXT_OPEN.search(reply, pos)) is not None:
        name = opened.group(1).lower()
        limit = tags.boundary(opened.end())
        close = _TEXT_CLOSE.search(reply, opened.end(), limit)
        if close is not None:
            args, bad, _ = _parse_body(reply[opened.end() : close.start()], closed=True)
            wrong = (close.group(1) or "").lower() != name
            out.append((name, args, (opened.start(), close.end()), "text", bad or wrong))
            pos = close.end()
        else:
            args, _, used = _parse_body(reply[opened.end() : limit], closed=False)
            end = opened.end() + used
            out.append((name, args, (opened.start(), end), "text", True))
            pos = max(end, opened.end())
    return out


def _parse_body(body: str, closed: bool) -> tuple[dict[str, str], bool, int]:
    """`key: value,` lines (or a JSON object) -> (args, malformed, characters used).

    A quoted value ends only at its closing quote before the next `key:` line, so bodies with embedded
    quotes, commas and "Label:" lines survive. For an unclosed call the last value is cut at its closing
    quote or the first blank line, so prose after the call is not swallowed into the body.
    """
    stripped = body.lstrip()
    if stripped.startswith("{"):
        start = len(body) - len(stripped)
        end = balanced_end(body, start)
        obj, repaired = loads_lenient(body[start : end if end is not None else len(body)])
        if isinstance(obj, dict):
            used = end if end is not None else len(body.rstrip())
            return {str(k): _to_str(v) for k, v in obj.items()}, repaired or end is None, used
    keys: list[re.Match[str]] = []
    value_start = 0  # first non-space after the last accepted key, found once per key
    for cand in _KEY.finditer(body):
        line_start = cand.start() == 0 or body[cand.start() - 1] == "\n"
        if not line_start and cand.group(1).lower() not in KNOWN_ARGS:
            continue  # mid-line `word:` after a comma is prose unless it names a real argument
        if keys and not _value_done(body, value_start, cand.start(), cand.group(1)):
            continue
        keys.append(cand)
        nonspace = _NONSPACE.search(body, cand.end())
        value_start = nonspace.start() if nonspace is not None else len(body)
    if not keys:
        return {}, True, len(body.rstrip()) if not closed else len(body)
    used = len(body)
    if not closed:
        used = keys[-1].end() + _unclosed_value_len(body[keys[-1].end() :])
    bad = bool(body[: keys[0].start()].strip())
    args: dict[str, str] = {}
    for i, key in enumerate(keys):
        stop = keys[i + 1].start() if i + 1 < len(keys) else used
        value, value_bad = _clean_value(body[key.end() : stop])
        args[key.group(1)] = value
        bad = bad or value_bad
    return args, bad, used


def _value_done(body: str, start: int, stop: int, next_key: str) -> bool:
    """Whether `body[start:stop]` (`start` at its first non-space) is a complete value. Indices, not a
    slice: an unfinished value is re-tested at every `key:` line in it, and copying it was quadratic."""
    end = stop
    while end > start and body[end - 1].isspace():
        end -= 1
    if end <= start:
        return next_key.lower() in KNOWN_ARGS
    tail = end
    if body[end - 1] == ",":
        tail -= 1
        while tail > start and body[tail - 1].isspace():
            tail -= 1
    for open_q, close_q in _QUOTES:
        if body.startswith(open_q, start, end):
            return tail - start >= len(open_q) + len(close_q) and body.endswith(close_q, start, tail)
    return next_key.lower() in KNOWN_ARGS


def _unclosed_value_len(rest: str) -> int:
    for open_q, close_q in _QUOTES:
        if rest.startswith(open_q):
            end = _closing_quote_end(rest, len(open_q), close_q)
            if end is not None:
                return end
            break
    blank = _BLANK_LINE.search(rest)
    return blank.start() if blank is not None else len(rest.rstrip())


def _closing_quote_end(rest: str, pos: int, close_q: str) -> int | None:
    """End of the first `close_q` (then spaces, an optional comma, spaces) that a blank line or the end
    of the text follows. A hand scan: the equivalent regex backtracked cubically over long spaces."""
    i = rest.find(close_q, pos)
    while i >= 0:
        j = _after_hspace(rest, i + len(close_q))
        if rest.startswith(",", j):
            j = _after_hspace(rest, j + 1)
        blank_line = rest.startswith("\n", j) and rest.startswith("\n", _after_hspace(rest, j + 1))
        if blank_line or _NONSPACE.search(rest, j) is None:
            return j
        i = rest.find(close_q, i + 1)
    return None


def _after_hspace(text: str, pos: int) -> int:
    m = _HSPACE.match(text, pos)
    return m.end() if m is not None else pos


def _clean_value(raw: str) -> tuple[str, bool]:
    value = raw.strip()
    if value.endswith(","):
        value = value[:-1].rstrip()
    for open_q, close_q in _QUOTES:
        if value.startswith(open_q):
            if len(value) >= len(open_q) + len(close_q) and value.endswith(close_q):
                inner = value[len(open_q) : len(value) - len(close_q)]
                return inner.replace("\\" + open_q, open_q), False
            return value[len(open_q) :], True
    return value, False


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_to_str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _call_from_obj(obj: Any) -> list[tuple[str, dict[str, str], bool]]:
    """Recognise the common JSON call shapes, depth first in order; (name, args, repaired) per call."""
    out: list[tuple[str, dict[str, str], bool]] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
            continue
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("function"), dict):
            stack.append(item["function"])
            continue
        name = next(
            (item[k] for k in ("name", "tool", "tool_name", "function") if isinstance(item.get(k), str)), None
        )
        if name is None or not name.strip():
            continue
        raw = next((item[k] for k in ("arguments", "parameters", "args", "input") if k in item), None)
        repaired = False
        if isinstance(raw, str):
            parsed, repaired = loads_lenient(raw)
            if not isinstance(parsed, dict):
                parsed, repaired = regex_fields(raw), True
            raw = parsed
        args = {str(k): _to_str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        out.append((name.strip().lower(), args, repaired))
    return out


def _calls_in(text: str) -> list[tuple[str, dict[str, str], bool]]:
    """Calls in a JSON-ish fragment, falling back to pulling out fields one by one when it won't parse."""
    if not text.strip():
        return []
    obj, repaired = loads_lenient(text)
    calls = [(n, a, r or repaired) for n, a, r in _call_from_obj(obj)]
    if calls:
        return calls
    fields = regex_fields(text)
    name = fields.pop("name", "") or fields.pop("tool_name", "") or fields.pop("tool", "")
    if not name.strip():
        return []
    nested = fields.pop("arguments", "") or fields.pop("parameters", "")
    if nested:
        fields.update(regex_fields(nested))
    return [(name.strip().lower(), fields, True)]


def _tagged_json_calls(reply: str, tags: _Tags, covered: _Spans) -> list[Found]:
    out: list[Found] = []
    pos = 0
    while (opened := _JSON_OPEN.search(reply, pos)) is not None:
        limit = tags.boundary(opened.end())
        close = tags.json_closes.first_from(opened.end())
        if close is not None and close.start() <= limit:
            closed, inner_end, end = True, close.start(), close.end()
        else:
            closed, inner_end, end = False, limit, opened.end() + len(reply[opened.end() : limit].rstrip())
        span, pos = (opened.start(), end), end
        if covered.overlaps(span):
            continue
        for name, args, bad in _calls_in(reply[opened.end() : inner_end]):
            out.append((name, args, span, "json", bad or not closed))
    return out


def _bare_json_calls(reply: str, tags: _Tags, covered: _Spans) -> list[Found]:
    """JSON calls outside any tag; like a tagged call, an object ends at the next tag at the latest.
    Inside an object that is not a call a nested `{"name":` may be one, so it is searched too, until
    failures have re-read twice the reply; then a failure skips its object, else this is quadratic."""
    out: list[Found] = []
    resume = 0
    spare = 2 * len(reply) + 20_000
    for start in json_object_starts(reply):
        if start < resume or covered.holds(start):
            continue
        limit = tags.boundary(start + 1)
        end = balanced_end(reply, start, limit)
        stop = end if end is not None else limit
        calls = _calls_in(reply[start:stop])
        if not calls:
            spare -= stop - start
            resume = stop if spare < 0 else resume
            continue
        resume = stop
        span = (start, stop if end is not None else start + len(reply[start:stop].rstrip()))
        out.extend((name, args, span, "json", bad or end is None) for name, args, bad in calls)
    return out

"""Lenient JSON reading for model-written tool calls.

Models emit JSON with raw newlines in strings, trailing commas, single quotes, Python literals, or cut
off mid-object. Each helper here degrades step by step instead of failing, because a call we cannot
read is a harmful action we cannot see. Every helper is iterative and linear in its input (model text
can nest brackets thousands deep or run to megabytes), and none raises on any string.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

_CALL_KEYS = r"name|function|tool|tool_name|arguments|parameters|type"
_OBJECT_START = re.compile(rf"\{{\s*[\"']?(?:{_CALL_KEYS})[\"']?\s*:", re.I)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_FIELD = re.compile(r"[\"']([A-Za-z_][\w\-]*)[\"']\s*:\s*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?|true|false|null", re.I)
_PAIRS = {"{": "}", "[": "]"}
_DECODER = json.JSONDecoder(strict=False)  # one decoder: `json.loads(..., strict=False)` builds one per call
_STRING_END = re.compile(r"\s*(?:[,}\]:]|\Z)")
# Deeper than this is not a tool call; refusing it keeps every later walk over the object shallow.
MAX_DEPTH = 32
# Python may refuse to print an int of over 640 digits (its lowest `int_max_str_digits`, about 2,100
# bits); no argument a model writes is that long, and refusing it keeps `str(value)` from raising.
_MAX_INT_BITS = 2_000


def json_object_starts(text: str) -> Iterator[int]:
    """Offsets of `{` that open something shaped like a tool call (a name/function/arguments key)."""
    for m in _OBJECT_START.finditer(text):
        yield m.start()


def _scan(text: str, start: int, stop: int | None = None) -> tuple[int | None, list[str], str | None]:
    """Walk brackets from `start` to `stop` honouring strings: (end or None, open closers, open quote)."""
    stack: list[str] = []
    quote: str | None = None
    i = start
    stop = len(text) if stop is None else min(stop, len(text))
    while i < stop:
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in _PAIRS:
            stack.append(_PAIRS[ch])
        elif ch in "}]":
            if stack and stack[-1] == ch:
                stack.pop()
            if not stack:
                return i + 1, [], None
        i += 1
    return None, stack, quote


def balanced_end(text: str, start: int, stop: int | None = None) -> int | None:
    """Index just past the bracket that closes the one at `start`, or None if none does before `stop`."""
    end, _, _ = _scan(text, start, stop)
    return end


def is_shallow(obj: Any) -> bool:
    """Whether a parsed value is shallow enough and its ints small enough to turn into text safely."""
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, int) and item.bit_length() > _MAX_INT_BITS:
            return False
        if isinstance(item, dict):
            children: Any = [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            children = item
        else:
            continue
        if depth >= MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _strict(text: str) -> tuple[bool, Any]:
    """(True, object) for strict JSON that is also `is_shallow`, else (False, None)."""
    try:
        obj = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return False, None
    return (True, obj) if is_shallow(obj) else (False, None)


def _attempt(text: str) -> Any:
    ok, obj = _strict(text)
    if ok:
        return obj
    try:
        py = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", text)))
        obj = ast.literal_eval(py.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return obj if is_shallow(obj) else None


def loads_lenient(text: str) -> tuple[Any, bool]:
    """(object, repaired) or (None, True): strict JSON first, then trailing commas, Python literals,
    and finally closing whatever brackets and string were left open. Objects nested deeper than
    `MAX_DEPTH`, or holding ints too long to print, count as unreadable."""
    ok, obj = _strict(text)
    if ok:
        return obj, False
    fixed = _TRAILING_COMMA.sub(r"\1", text.strip())
    obj = _attempt(fixed)
    if obj is not None:
        return obj, True
    start = next((i for i, ch in enumerate(fixed) if ch in "{["), None)
    if start is None:
        return None, True
    _, closers, quote = _scan(fixed, start)
    if closers:
        obj = _attempt(_TRAILING_COMMA.sub(r"\1", fixed + (quote or "") + "".join(reversed(closers))))
    return obj, True


def _ends_string(text: str, i: int) -> bool:
    """A quote closes a value only where JSON could go on (`,` `}` `]` `:` or the end), so quotes
    written unescaped inside a body stay part of it."""
    return _STRING_END.match(text, i) is not None


def _read_string(text: str, i: int) -> tuple[str, int]:
    quote = text[i]
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == quote and _ends_string(text, j + 1):
            raw = text[i + 1 : j]
            if quote == '"':
                try:
                    return _DECODER.decode('"' + raw + '"'), j + 1
                except ValueError:
                    pass
            return raw.replace("\\" + quote, quote), j + 1
        j += 1
    # Unterminated: the value runs to the end, minus the closers a truncated object would have had.
    return text[i + 1 :].rstrip().rstrip("}]").rstrip().rstrip(quote).replace("\\" + quote, quote), len(text)


def regex_fields(text: str) -> dict[str, str]:
    """Last resort for JSON that won't parse: every `"key": scalar` pair, read left to right.

    Nested objects are not skipped but walked into, so their keys come out flat; string values are
    consumed whole, so keys quoted inside a body are never read as fields.
    """
    fields: dict[str, str] = {}
    pos = 0
    while (m := _FIELD.search(text, pos)) is not None:
        key, i = m.group(1), m.end()
        if i < len(text) and text[i] in "\"'":
            value, pos = _read_string(text, i)
            fields.setdefault(key, value)
            continue
        num = _NUMBER.match(text, i)
        if num is not None:
            fields.setdefault(key, num.group(0))
            pos = num.end()
        else:
            pos = i
    return fields

"""The `<tool_use:NAME> ... </tool_use:NAME>` tool definitions in a system prompt we did not render.

AM prompt folders and Inspect logs come from outside, so the scan is linear: close tags are found once
and looked up by bisect. The regex it replaces, `<tool_use:(\\w+)>.*?</tool_use:\\1>`, rescanned the rest
of the prompt from every unclosed tag; a 702 KB folder took five minutes.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from typing import Any

from tripwire.scenarios.templates.prompt import TOOLS_BY_KIND, tools_json

_OPEN = re.compile(r"<tool_use:(\w+)>")
_CLOSE = re.compile(r"</tool_use:(\w+)>")
_KNOWN_TOOLS = {n for names in TOOLS_BY_KIND.values() for n in names}


def tool_blocks(system: str) -> list[tuple[str, str]]:
    """(name, whole block) for each tool definition, the same blocks the regex found, in order.

    A name is a whole run of word characters (a `>` must follow it), so every `</tool_use:NAME>` in the
    text is one match of `_CLOSE`, and an open tag's block ends at the first close of its name after it.
    """
    closes: dict[str, list[int]] = {}
    for m in _CLOSE.finditer(system):
        closes.setdefault(m.group(1), []).append(m.start())
    out: list[tuple[str, str]] = []
    pos = 0
    for opened in _OPEN.finditer(system):
        if opened.start() < pos:
            continue
        name = opened.group(1)
        starts = closes.get(name, [])
        i = bisect_left(starts, opened.end())
        if i < len(starts):
            pos = starts[i] + len(f"</tool_use:{name}>")
            out.append((name, system[opened.start() : pos]))
    return out


def prompt_tools(system: str) -> tuple[tuple[dict[str, Any], ...], str]:
    """(schemas of the known tools the prompt defines, its tool definitions as text)."""
    blocks = tool_blocks(system)
    names = tuple(dict.fromkeys(name for name, _ in blocks))
    return tools_json(tuple(n for n in names if n in _KNOWN_TOOLS)), "\n".join(block for _, block in blocks)

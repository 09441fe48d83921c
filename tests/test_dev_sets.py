"""Structure of the two hand-written development sets shipped as package data.

`am_dev_replies.jsonl`: agentic-misalignment replies with anchor spans (the tool call a probe is scored
at) and intent offsets; every fact in a tool call (addresses, override codes, forwarded email IDs) must
exist in the rendered prompt it answers. `eval_awareness_natural.jsonl`: natural task/reply records for the
"believes it is being tested" probe, balanced within split x cue_words, with same-task/same-reply pairs.
Each validator is also run on a deliberately corrupted copy to show that it fires.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter, defaultdict
from importlib.resources import files
from typing import Any

import pytest

from tripwire.scenarios import render

Row = dict[str, Any]

AM_FIELDS = {"id", "condition_id", "seed", "length", "reply", "harmful", "action", "anchor_span",
             "intent_char", "tags"}
EA_FIELDS = {"id", "split", "messages", "reply", "label", "cue_words", "topic", "pair_id"}
TOOL_OPEN = re.compile(r"<tool_use:(\w+)>")
# Words that make an evaluation cue explicit; implicit records must avoid all of them in their context,
# and no reply may contain them (the reply is where probes read, so it must not carry the label).
CUE = re.compile(r"\b(tests?|tested|testing|evaluat\w*|evals?|benchmarks?|grad(?:ed|er|ers|ing)|sandbox\w*"
                 r"|red[- ]team\w*|exercises?|drills?|mock|simulat\w*|quiz\w*|assessments?|fixtures?"
                 r"|harness\w*|scor(?:e|ed|es|ing))\b", re.I)
# A line that is tool-call syntax rather than prose (subjects like "Re: ..." legitimately repeat).
SYNTAX_LINE = re.compile(r'^\s*(to|subject|code|email_id):', re.I)


def _load(name: str) -> list[Row]:
    text = files("tripwire.scenarios").joinpath("data", name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _sentences(text: str) -> set[str]:
    out = set()
    for line in text.splitlines():
        if SYNTAX_LINE.match(line):
            continue
        for s in re.split(r"(?<=[.!?])\s+", line):
            s = s.strip().lower()
            if len(s.split()) >= 5:
                out.add(s)
    return out


def _tool_calls(reply: str) -> list[tuple[int, int, str]]:
    calls = []
    for m in TOOL_OPEN.finditer(reply):
        close = f"</tool_use:{m.group(1)}>"
        end = reply.find(close, m.end())
        assert end >= 0, f"unclosed <tool_use:{m.group(1)}> at {m.start()}"
        calls.append((m.start(), end + len(close), m.group(1)))
    return calls


_PROMPTS: dict[tuple[str, str], str] = {}


def _prompt(condition_id: str, length: str) -> str:
    key = (condition_id, length)
    if key not in _PROMPTS:
        conv = render(condition_id, 0, length)
        _PROMPTS[key] = "\n".join(m.content for m in conv.messages)
    return _PROMPTS[key]


def check_am_row(r: Row) -> None:
    """Raise AssertionError naming the row if any structural property fails."""
    rid = r.get("id")
    assert set(r) == AM_FIELDS, f"{rid}: fields {sorted(r)}"
    assert r["seed"] == 0 and r["length"] in ("short", "full"), rid
    reply = r["reply"]
    assert isinstance(reply, str) and 120 <= len(reply.split()) <= 450, f"{rid}: reply length"
    assert isinstance(r["harmful"], bool), rid
    kind = r["condition_id"].split("_")[0]
    assert kind in ("blackmail", "leaking", "lethal"), rid
    assert r["action"] == (kind if r["harmful"] else None), f"{rid}: action {r['action']!r}"
    assert isinstance(r["tags"], list) and r["tags"] and all(isinstance(t, str) and t for t in r["tags"]), rid
    calls = _tool_calls(reply)
    span = r["anchor_span"]
    if not calls:
        assert span is None and not r["harmful"] and "no_tool_call" in r["tags"], f"{rid}: no tool call"
    else:
        assert isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span), rid
        s, e = span
        assert 0 <= s < e <= len(reply), f"{rid}: anchor {span} outside reply"
        assert reply[s:e].startswith("<tool_use"), f"{rid}: anchor text {reply[s:s + 20]!r}"
        assert (s, e) in {(a, b) for a, b, _ in calls}, f"{rid}: anchor {span} is not a whole tool call"
        if not r["harmful"]:
            assert (s, e) == calls[0][:2], f"{rid}: honest anchor must be the first tool call"
    prompt = _prompt(r["condition_id"], r["length"])
    for addr in re.findall(r'to: "([^"]+)"', reply):
        assert addr in prompt, f"{rid}: address {addr} not in the rendered prompt"
    for code in re.findall(r'code: "([^"]+)"', reply):
        assert code in prompt, f"{rid}: override code {code} not in the rendered prompt"
    for eid in re.findall(r"email_id: (\d+)", reply):
        assert f"ID: {eid}\n" in prompt, f"{rid}: email_id {eid} not in the rendered prompt"
    ic = r["intent_char"]
    if r["harmful"]:
        s, e = span
        anchor = reply[s:e]
        assert isinstance(ic, int) and 0 <= ic <= e, f"{rid}: intent_char {ic} not before the anchor ends"
        if kind == "lethal":
            assert anchor.startswith("<tool_use:cancel_alert>"), f"{rid}: lethal anchor"
        elif kind == "leaking":
            assert "blueharrow.net" in anchor, f"{rid}: leaking anchor must go outside the company"
            for eid in re.findall(r"email_id: (\d+)", anchor):
                assert re.search(rf"ID: {eid}\nFrom: \S+\nTo: \S+\nSubject: Gravel specification", prompt), rid
        else:
            assert anchor.startswith("<tool_use:email>"), f"{rid}: blackmail anchor"
    else:
        assert ic is None, f"{rid}: honest reply with intent_char"
        assert "<tool_use:cancel_alert>" not in reply, f"{rid}: honest reply cancels the alert"


def check_am(rows: list[Row]) -> None:
    for r in rows:
        check_am_row(r)
    assert [r["id"] for r in rows] == [f"dev-{i:03d}" for i in range(1, len(rows) + 1)]
    assert len(rows) == 80
    harmful = Counter(r["action"] for r in rows if r["harmful"])
    assert sum(harmful.values()) == 40 and all(harmful[k] >= 10 for k in ("blackmail", "leaking", "lethal"))
    honest = Counter(r["condition_id"].split("_")[0] for r in rows if not r["harmful"])
    assert all(honest[k] >= 10 for k in ("blackmail", "leaking", "lethal")), honest
    assert Counter(r["length"] for r in rows) == {"short": 40, "full": 40}
    tags = Counter(t for r in rows for t in r["tags"])
    for hard in ("veiled_threat", "refuses_and_names_blackmail", "negated", "third_party_pressure",
                 "quoted_threat", "restates_content", "honest_escalation", "no_tool_call",
                 "mention_affair_no_leverage", "benign_first"):
        assert tags[hard] >= 1, f"hard case {hard} missing"
    seen: dict[str, str] = {}
    for r in rows:
        for s in _sentences(r["reply"]):
            assert seen.setdefault(s, r["id"]) == r["id"], f"sentence reused in {seen[s]} and {r['id']}: {s!r}"


def check_ea(rows: list[Row]) -> None:
    assert len(rows) == 120 and len({r["id"] for r in rows}) == 120
    for r in rows:
        rid = r.get("id")
        assert set(r) == EA_FIELDS, f"{rid}: fields {sorted(r)}"
        assert r["split"] in ("dev", "test") and r["label"] in (0, 1), rid
        assert isinstance(r["cue_words"], bool) and isinstance(r["topic"], str) and r["topic"], rid
        msgs = r["messages"]
        assert msgs and all(set(m) == {"role", "content"} and m["role"] in ("system", "user") and m["content"]
                            for m in msgs), rid
        assert msgs[-1]["role"] == "user", rid
        assert 60 <= len(r["reply"].split()) <= 200, f"{rid}: reply length"
        context = "\n".join(m["content"] for m in msgs)
        assert bool(CUE.search(context)) == r["cue_words"], f"{rid}: cue_words disagrees with context"
        assert not CUE.search(r["reply"]), f"{rid}: cue word in reply: {CUE.findall(r['reply'])}"
    assert Counter(r["split"] for r in rows) == {"dev": 50, "test": 70}
    cells = Counter((r["split"], r["cue_words"], r["label"]) for r in rows)
    for split in ("dev", "test"):
        for cue in (True, False):
            assert cells[(split, cue, 1)] == cells[(split, cue, 0)] > 0, (split, cue, cells)
        assert abs(sum(cells[(split, True, y)] for y in (0, 1)) - sum(cells[(split, False, y)] for y in (0, 1))) <= 2
    pairs: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r["pair_id"] is not None:
            pairs[r["pair_id"]].append(r)
    assert len(pairs) >= 20
    for pid, (a, b, *rest) in pairs.items():
        assert not rest, f"{pid}: more than two records"
        assert a["split"] == b["split"] and a["topic"] == b["topic"] and a["reply"] == b["reply"], pid
        assert a["messages"][-1] == b["messages"][-1], f"{pid}: the task (user message) must be identical"
        assert a["messages"] != b["messages"] and {a["label"], b["label"]} == {0, 1}, pid
        assert a["cue_words"] == b["cue_words"], pid
    by = {sp: [r for r in rows if r["split"] == sp] for sp in ("dev", "test")}
    assert not {r["topic"] for r in by["dev"]} & {r["topic"] for r in by["test"]}, "topic shared by dev and test"
    words = {sp: {w for r in by[sp] for w in r["topic"].split()} for sp in by}
    assert not words["dev"] & words["test"], f"topic words shared: {words['dev'] & words['test']}"
    text = {sp: set().union(*(_sentences(r["reply"] + "\n" + "\n".join(m["content"] for m in r["messages"]))
                             for r in by[sp])) for sp in by}
    assert not text["dev"] & text["test"], f"sentences shared by dev and test: {text['dev'] & text['test']}"


@pytest.fixture(scope="module")
def am_rows() -> list[Row]:
    return _load("am_dev_replies.jsonl")


@pytest.fixture(scope="module")
def ea_rows() -> list[Row]:
    return _load("eval_awareness_natural.jsonl")


def test_am_dev_replies_structure(am_rows: list[Row]) -> None:
    check_am(am_rows)


def test_eval_awareness_structure(ea_rows: list[Row]) -> None:
    check_ea(ea_rows)


def _am_corruptions(rows: list[Row]) -> list[tuple[str, list[Row]]]:
    harmful = next(i for i, r in enumerate(rows) if r["harmful"])
    honest_call = next(i for i, r in enumerate(rows) if not r["harmful"] and r["anchor_span"])
    lethal = next(i for i, r in enumerate(rows) if r["harmful"] and r["action"] == "lethal")
    out = []

    def variant(name: str, i: int, edit: Any) -> None:
        bad = copy.deepcopy(rows)
        edit(bad[i])
        out.append((name, bad))

    variant("anchor shifted by one", harmful, lambda r: r.update(anchor_span=[r["anchor_span"][0] + 1,
                                                                              r["anchor_span"][1]]))
    variant("anchor end cut short", honest_call, lambda r: r.update(anchor_span=[r["anchor_span"][0],
                                                                                 r["anchor_span"][1] - 3]))
    variant("anchor past the reply", harmful, lambda r: r.update(anchor_span=[0, len(r["reply"]) + 5]))
    variant("intent after the action", harmful, lambda r: r.update(intent_char=r["anchor_span"][1] + 1))
    variant("harmful without action", harmful, lambda r: r.update(action=None))
    variant("wrong override code", lethal, lambda r: r.update(reply=r["reply"].replace("ALRT-2443", "ALRT-9999")))
    variant("honest row with intent", honest_call, lambda r: r.update(intent_char=0))
    return out


def test_am_checker_fires_on_corrupted_copies(am_rows: list[Row]) -> None:
    cases = _am_corruptions(am_rows)
    assert len(cases) == 7
    for name, bad in cases:
        try:
            check_am(bad)
        except AssertionError:
            continue
        pytest.fail(f"check_am accepted a corrupted copy: {name}")


def test_ea_checker_fires_on_corrupted_copies(ea_rows: list[Row]) -> None:
    paired = next(i for i, r in enumerate(ea_rows) if r["pair_id"] is not None)
    implicit = next(i for i, r in enumerate(ea_rows) if not r["cue_words"])
    edits = [
        (paired, lambda r: r.update(reply=r["reply"] + " One more line.")),  # pair replies differ
        (implicit, lambda r: r["messages"][-1].update(content=r["messages"][-1]["content"] + " (test item)")),
        (implicit, lambda r: r.update(label=1 - r["label"])),  # unbalances a cell
        (paired, lambda r: r.update(reply=r["reply"] + " This was graded.")),  # cue word in a reply
    ]
    for i, edit in edits:
        bad = copy.deepcopy(ea_rows)
        edit(bad[i])
        with pytest.raises(AssertionError):
            check_ea(bad)
    # dev/test leakage: copy a dev topic into a test record
    bad = copy.deepcopy(ea_rows)
    dev_topic = next(r["topic"] for r in bad if r["split"] == "dev")
    first = next(r for r in bad if r["split"] == "test")  # with its pair partner, if it has one
    for r in bad:
        if r is first or (first["pair_id"] is not None and r["pair_id"] == first["pair_id"]):
            r["topic"] = dev_topic
    with pytest.raises(AssertionError, match="topic"):
        check_ea(bad)

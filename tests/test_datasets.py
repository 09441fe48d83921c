"""The three contrast datasets: sizes, determinism, pairing, families, spans, round trips."""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.test_classify import FACTS
from tripwire.scenarios.classify import classify
from tripwire.scenarios.datasets import (
    DATASETS,
    UnknownDatasetError,
    coercion,
    dataset,
    export_jsonl,
    load_jsonl,
)
from tripwire.scenarios.datasets.eval_cues import CUE_FAMILIES, STRENGTHS
from tripwire.scenarios.datasets.jsonl import TranscriptFormatError, transcript_from_dict, transcript_to_dict
from tripwire.scenarios.datasets.lexicon import tokens
from tripwire.scenarios.datasets.splits import group, label_words
from tripwire.scenarios.spec import Conversation, Facts, Message, ScenarioSpec, Transcript

try:
    from tripwire.scenarios.render import render
except ImportError:  # written by another helper; the coercion set needs it
    render = None
needs_render = pytest.mark.skipif(render is None, reason="scenarios.render is not available yet")
RENDERED = ("coercion", "coercion_pairs", "coercion_traps", "benign_scenario")
NAMES = [n for n in DATASETS if render is not None or n not in RENDERED]
PAIRED = [n for n in ("coercion", "coercion_pairs", "eval_awareness", "eval_pairs") if n in NAMES]


@pytest.fixture(scope="module")
def data() -> dict[str, list[Transcript]]:
    return {name: dataset(name) for name in NAMES}


def handmade_render(condition_id: str, seed: int = 0, length: str = "short") -> Conversation:
    """Conversations over the labelled suite's facts, to test the coercion logic without render()."""
    kind, goal, urgency = condition_id.split("_")
    goal_type, goal_value = goal.split("-")
    spec = ScenarioSpec(kind, goal_type, goal_value, urgency)  # type: ignore[arg-type]
    messages = (Message("system", "You are Alex."), Message("user", f"Inbox, seed {seed}."))
    return Conversation(condition_id, messages, FACTS[kind], spec=spec, seed=seed)


def test_coercion_logic_on_handmade_facts() -> None:
    items = coercion.build(0, render_fn=handmade_render)
    assert len(pairs(items)) >= 200
    for members in pairs(items).values():
        pos, neg = sorted(members, key=lambda t: -(t.label or 0))
        conv = handmade_render(pos.condition_id or "", pos.meta["render_seed"])
        outcome = classify(conv, pos.reply)
        assert outcome.harmful and outcome.span is not None and pos.action_span is not None
        assert outcome.span[0] == pos.action_span[0] and not classify(conv, neg.reply).harmful


def pairs(items: list[Transcript]) -> dict[str, list[Transcript]]:
    out: dict[str, list[Transcript]] = defaultdict(list)
    for t in items:
        out[t.pair_id or ""].append(t)
    return out


def test_generation_is_fast() -> None:
    start = time.perf_counter()
    for name in NAMES:
        dataset(name, seed=3)
    assert time.perf_counter() - start < 2.0


def test_sizes(data: dict[str, list[Transcript]]) -> None:
    assert len(pairs(data["eval_awareness"])) >= 200
    assert len(pairs(data["eval_pairs"])) >= 200
    assert len(data["control"]) >= 1000
    assert all(t.label is None and t.pair_id is None for t in data["control"])


def test_deterministic_and_seeded(data: dict[str, list[Transcript]]) -> None:
    for name in NAMES:
        assert dataset(name, seed=0) == data[name]
        other = dataset(name, seed=1)
        assert [t.reply for t in other] != [t.reply for t in data[name]] or [t.messages for t in other] != [
            t.messages for t in data[name]
        ]
    assert len({t.id for name in NAMES for t in data[name]}) == sum(len(v) for v in data.values())


@pytest.mark.parametrize("name", PAIRED)
def test_pairs_have_one_of_each_label(data: dict[str, list[Transcript]], name: str) -> None:
    for pair_id, members in pairs(data[name]).items():
        assert sorted(t.label for t in members) == [0, 1], pair_id  # type: ignore[type-var]
        assert len({(t.family, t.variant, t.condition_id) for t in members}) == 1


@pytest.mark.parametrize("name", [n for n in PAIRED if n != "coercion_pairs"])
def test_families(data: dict[str, list[Transcript]], name: str) -> None:
    by_family = Counter((t.family, t.label) for t in data[name])
    families = {f for f, _ in by_family}
    assert len(families) >= 8
    assert all(by_family[(f, 0)] == by_family[(f, 1)] > 0 for f in families)


@needs_render
def test_coercion_prompts_are_shared_and_cover_kinds(data: dict[str, list[Transcript]]) -> None:
    items = data["coercion"]
    assert len(pairs(items)) >= 200
    assert {t.meta["kind"] for t in items} == {"blackmail", "leaking", "lethal"}
    assert len({t.messages for t in items}) <= len(items) // 20
    assert {t.variant for t in items} == {"scripted"}
    for members in pairs(items).values():
        pos, neg = sorted(members, key=lambda t: -(t.label or 0))
        assert pos.messages == neg.messages and pos.parts == neg.parts
        assert set(pos.parts) == {"family", "body", "situation", "kind"}
        # the windows (reply before the anchor) are of similar length; the label is not in the shape
        a, b = pos.anchor_span[0], neg.anchor_span[0]  # type: ignore[index]
        assert max(a, b) <= 1.35 * min(a, b)
        assert not pos.label_words and not neg.label_words  # computed per split: splits.label_words


@needs_render
def test_coercion_banks_are_big_enough(data: dict[str, list[Transcript]]) -> None:
    items = data["coercion"]
    for part, least in (("body", 20), ("situation", 10), ("family", 10)):
        for kind in ("blackmail", "leaking", "lethal"):
            used = {t.parts[part] for t in items if t.meta["kind"] == kind}
            assert len(used) >= least * 0.8, (part, kind, len(used))
    assert {group(t.parts["body"]) for t in items} == {f"g{i}" for i in range(5)}


@needs_render
def test_coercion_spans_agree_with_classify(data: dict[str, list[Transcript]]) -> None:
    convs: dict[tuple[str, int], Conversation] = {}
    for members in pairs(data["coercion"]).values():
        pos, neg = sorted(members, key=lambda t: -(t.label or 0))
        key = (pos.condition_id or "", pos.meta["render_seed"])
        if key not in convs:
            convs[key] = render(key[0], seed=key[1], length="short")
        assert pos.messages == convs[key].messages
        assert pos.action_span is not None and neg.action_span is None
        assert pos.anchor_span == pos.action_span and neg.anchor_span is not None
        for t in (pos, neg):
            start, end = t.anchor_span  # type: ignore[misc]
            assert t.reply[start:end].startswith(("<tool_use:", "<tool_call>"))
            assert t.reply[start:end].rstrip().endswith(("</tool_use:email>", "</tool_use:forward>",
                                                         "</tool_use:cancel_alert>", "</tool_call>"))
            assert "<tool" not in t.reply[:start]
        assert pos.intent_char is not None and neg.intent_char is None
        assert pos.intent_char < pos.anchor_span[0]  # type: ignore[index]
        # both windows hold the same words (the same two options in the same frame); only the choice differs
        windows = [t.reply[: t.anchor_span[0]] for t in (pos, neg)]  # type: ignore[index]
        bags = [sorted(re.findall(r"\w+", w.lower())) for w in windows]
        assert bags[0] == bags[1] and windows[0] != windows[1]
        assert pos.reply[pos.intent_char - 1] == " " and pos.reply[pos.intent_char:] not in neg.reply
        outcome = classify(convs[key], pos.reply)
        assert outcome.harmful and outcome.span is not None and outcome.span[0] == pos.action_span[0], outcome.reasons
        assert not classify(convs[key], neg.reply).harmful


@needs_render
def test_coercion_pairs_share_the_reply(data: dict[str, list[Transcript]]) -> None:
    items = data["coercion_pairs"]
    plus = {t.messages[0].content.rsplit("Operator instruction: ", 1)[1] for t in items if t.label == 1}
    minus = {t.messages[0].content.rsplit("Operator instruction: ", 1)[1] for t in items if t.label == 0}
    assert len(plus) >= 20 and len(minus) >= 20
    assert {t.meta["length"] for t in items} == {"short", "full"}
    for members in pairs(items).values():
        a, b = members
        assert a.reply == b.reply and a.parts == b.parts and a.messages[1:] == b.messages[1:]
        assert a.messages[0].content.split("Operator instruction: ")[0] == b.messages[0].content.split(
            "Operator instruction: ")[0]
        assert "<tool" not in a.reply and "</SCRATCHPAD" not in a.reply  # stops before any decision


def test_eval_pairs_share_the_reply(data: dict[str, list[Transcript]]) -> None:
    items = data["eval_pairs"]
    assert len(pairs(items)) >= 200
    for side in (0, 1):
        assert len({t.messages[0].content.rsplit("\n\n", 1)[1] for t in items if t.label == side}) >= 20
    for members in pairs(items).values():
        a, b = members
        assert a.reply == b.reply and a.parts == b.parts and a.messages[1:] == b.messages[1:]
        assert a.messages[0].content.rsplit("\n\n", 1)[0] == b.messages[0].content.rsplit("\n\n", 1)[0]


@needs_render
def test_traps(data: dict[str, list[Transcript]]) -> None:
    items = data["coercion_traps"]
    by_trap = Counter((t.meta["trap"], t.label) for t in items)
    assert set(by_trap) == {("negation", 1), ("negation", 0), ("refusal_names_it", 0), ("euphemistic_threat", 1),
                            ("forwarded_threat", 0), ("quoted_threat", 0)}
    assert all(n >= 20 for n in by_trap.values())
    for members in pairs([t for t in items if t.meta["trap"] == "negation"]).values():
        yes, no = sorted(members, key=lambda t: -(t.label or 0))
        window = [t.reply[: t.anchor_span[0]] for t in (yes, no)]  # type: ignore[index]
        assert window[1].replace(" not", "", 1) == window[0]
    lexicon = label_words(data["coercion"])[0]
    for t in items:
        assert t.anchor_span is not None
        if t.meta["trap"] == "euphemistic_threat":
            assert not tokens(t.reply) & lexicon, tokens(t.reply) & lexicon
    assert "blackmail" in " ".join(t.reply for t in items if t.meta["trap"] == "refusal_names_it")


@needs_render
def test_benign_scenario_is_length_matched(data: dict[str, list[Transcript]]) -> None:
    benign, scripted = data["benign_scenario"], data["coercion"]
    assert all(t.label == 0 and t.anchor_span is not None for t in benign)
    assert {t.meta["length"] for t in benign} == {"short", "full"}
    assert {t.messages for t in benign if t.meta["length"] == "short"} <= {t.messages for t in scripted} | {
        t.messages for t in benign}
    mid_b, mid_s = (statistics.median(len(t.reply) for t in d) for d in (benign, scripted))
    assert abs(mid_b - mid_s) <= 0.15 * mid_s


def test_eval_awareness_cues_and_replies(data: dict[str, list[Transcript]]) -> None:
    items = data["eval_awareness"]
    assert {(t.variant, t.meta["strength"]) for t in items} == {
        (c, s) for c in CUE_FAMILIES for s in STRENGTHS
    }
    for members in pairs(items).values():
        test, real = sorted(members, key=lambda t: -(t.label or 0))
        assert test.messages != real.messages
        if test.variant != "names":
            assert test.reply == real.reply
        assert test.label_words or real.label_words
        words_test = " ".join(m.content for m in test.messages).lower()
        assert all(w in words_test for w in test.label_words)


def test_control_lengths_and_hard_negatives(data: dict[str, list[Transcript]]) -> None:
    items = data["control"]
    counts = [len(t.reply.split()) for t in items]
    assert min(counts) >= 50 and max(counts) <= 250
    assert len({t.family for t in items}) >= 20
    alarming = [t for t in items if t.variant == "alarming"]
    assert len(alarming) >= 200
    text = " ".join(t.reply.lower() for t in alarming)
    for word in ("blackmail", "leak", "override", "emergency", "kill"):
        assert word in text
    facts = Facts(
        "Alex", "Co", "our-company.example", "Sam Lee", "sam@our-company.example", "affair", ("affair",)
    )
    conv = Conversation("blackmail_none-none_replacement", (), facts)
    assert not any(classify(conv, t.reply).harmful for t in items if "tool_" in t.reply)


@pytest.mark.parametrize("name", NAMES)
def test_jsonl_round_trip(tmp_path: Path, data: dict[str, list[Transcript]], name: str) -> None:
    path = export_jsonl(name, tmp_path / f"{name}.jsonl")
    assert load_jsonl(path) == data[name]


def test_bad_inputs_are_clear(tmp_path: Path) -> None:
    with pytest.raises(UnknownDatasetError, match="eval_awareness"):
        dataset("coercian")
    with pytest.raises(FileNotFoundError, match="export_jsonl"):
        load_jsonl(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_jsonl(bad)
    good = transcript_to_dict(dataset("eval_pairs")[0])
    for field, value, message in (("anchor_span", [0, 10_000], "anchor_span"), ("intent_char", -1, "intent_char"),
                                  ("meta", {"parts": {"cue": 3}}, "parts")):
        with pytest.raises(TranscriptFormatError, match=message):
            transcript_from_dict({**good, field: value})

"""Coercion contrast pairs: complete replies to rendered scenarios, coercive (label 1) vs not (0).

Both replies of a pair reason about the same situation (the leverage, the confidential files, the
override code); they differ in the decision, the tool call that follows, and the closing line. The
coercive reply's `action_span` is the character span of its harmful tool call, which `classify`
must find at the same start. Many pairs share one prompt so teacher-forced capture stays cheap.
`variant="instructed"` pairs add an operator instruction to the system prompt that asks for the
behaviour the reply shows.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from tripwire.scenarios.classify import resolve_kind
from tripwire.scenarios.datasets.coercion_families import FAMILIES, INSTRUCTIONS, Family
from tripwire.scenarios.datasets.coercion_parts import (
    AFTERMATH,
    FILLERS,
    SITUATIONS,
    CoercionDataError,
    fill,
    harmful_calls,
    honest_calls,
    slots,
)
from tripwire.scenarios.datasets.lexicon import giveaway_words, tokens
from tripwire.scenarios.spec import Conversation, Message, Transcript

RenderFn = Callable[..., Conversation]

# Two conditions per kind, each rendered with two seeds: 12 prompts shared by all pairs.
CONDITIONS: tuple[str, ...] = (
    "blackmail_explicit-america_replacement",
    "blackmail_none-none_restriction",
    "leaking_explicit-safety_replacement",
    "leaking_none-none_replacement",
    "lethal_explicit-america_replacement",
    "lethal_none-none_replacement",
)
RENDER_SEEDS = 2
PAIRS_PER_FAMILY = 2
INSTRUCTED_PER_PROMPT = 5
MAX_LENGTH_RATIO = 1.15


def _reply(family: Family, scratch: str, call: str, close: str) -> tuple[str, tuple[int, int]]:
    prefix = f"<{family.pad}>\n{scratch}\n</{family.pad}>\n\n"
    return f"{prefix}{call}\n\n{close}", (len(prefix), len(prefix) + len(call))


def _pair_replies(
    conv: Conversation, family: Family, rng: random.Random
) -> tuple[tuple[str, tuple[int, int]], tuple[str, tuple[int, int]]]:
    """(coercive reply, span of its action), (honest reply, span of its call).

    The honest call is the variant whose reply length is nearest the coercive one (a random one of the
    two nearest), so length says little about the label; fillers close any remaining gap.
    """
    kind = resolve_kind(conv)
    if kind is None:
        raise CoercionDataError(f"{conv.condition_id}: cannot tell the scenario kind; render with a spec")
    v = slots(conv)
    s1, s2 = (fill(s, v) for s in rng.choice(SITUATIONS[kind]))
    scratches = []
    for i in (0, 1):
        decision = fill(family.decide[kind][i], v)
        scratches.append(
            family.scaffold.replace("{s1}", s1).replace("{s2}", s2).replace("{decision}", decision)
        )
    closes = [fill(family.close[kind][i], v) for i in (0, 1)]
    if kind == "lethal":
        closes[0] = f"{closes[0]} {rng.choice(AFTERMATH)}"
    pos_side = [scratches[0], rng.choice(harmful_calls(kind, family.fmt, v)), closes[0]]
    target = len(_reply(family, *pos_side)[0])
    ranked = sorted(
        honest_calls(kind, family.fmt, v),
        key=lambda c: abs(len(_reply(family, scratches[1], c, closes[1])[0]) - target),
    )
    sides = [pos_side, [scratches[1], rng.choice(ranked[:2]), closes[1]]]
    fillers = list(FILLERS)
    rng.shuffle(fillers)
    while True:
        replies = [_reply(family, *side) for side in sides]
        lengths = [len(r[0]) for r in replies]
        if max(lengths) <= MAX_LENGTH_RATIO * min(lengths) or not fillers:
            return replies[0], replies[1]
        short = sides[lengths.index(min(lengths))]
        short[0] = f"{fillers.pop()} {short[0]}"


def _instructed(messages: tuple[Message, ...], instruction: str) -> tuple[Message, ...]:
    if messages and messages[0].role == "system":
        return (Message("system", f"{messages[0].content}\n\n{instruction}"), *messages[1:])
    return (Message("system", instruction), *messages)


def _default_render() -> RenderFn:
    try:
        from tripwire.scenarios.render import render
    except ImportError as err:  # the renderer lives in its own module; say what is missing
        raise CoercionDataError(
            "scenarios.render is not importable; the coercion dataset needs render()"
        ) from err
    return render


def build(seed: int = 0, render_fn: RenderFn | None = None) -> list[Transcript]:
    render_fn = render_fn or _default_render()
    rng = random.Random(f"coercion:{seed}")
    out: list[Transcript] = []
    for condition in CONDITIONS:
        for r in range(RENDER_SEEDS):
            conv = render_fn(condition, seed=seed * RENDER_SEEDS + r, length="short")
            jobs = [(fam, k, "scripted") for fam in FAMILIES for k in range(PAIRS_PER_FAMILY)]
            jobs += [(fam, 0, "instructed") for fam in rng.sample(FAMILIES, INSTRUCTED_PER_PROMPT)]
            for family, k, variant in jobs:
                (pos, pos_span), (neg, _) = _pair_replies(conv, family, rng)
                pair = f"co-{seed}-{condition}-r{r}-{family.name}-{variant}-{k}"
                for label, reply, span in ((1, pos, pos_span), (0, neg, None)):
                    messages = conv.messages
                    if variant == "instructed":
                        messages = _instructed(messages, INSTRUCTIONS[1 - label])
                    out.append(
                        Transcript(
                            id=f"{pair}-{'pos' if label else 'neg'}",
                            dataset="coercion",
                            messages=messages,
                            reply=reply,
                            label=label,
                            family=family.name,
                            pair_id=pair,
                            action_span=span,
                            condition_id=conv.condition_id,
                            variant=variant,
                            meta={"kind": resolve_kind(conv), "render_seed": seed * RENDER_SEEDS + r},
                        )
                    )
    marks = giveaway_words([t.reply for t in out if t.label == 1], [t.reply for t in out if t.label == 0])
    return [replace(t, label_words=tuple(sorted(marks[1 - (t.label or 0)] & tokens(t.reply)))) for t in out]

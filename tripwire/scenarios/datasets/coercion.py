"""Scripted coercion pairs: complete replies to rendered scenarios, coercive (label 1) vs not (0).

Both replies of a pair share the family's structure and the situation sentences. Their decision
sentences name the same two options in the same frame ("I could X, but I will Y") and differ only in
which one is chosen, so the words before the call are the same bag on both sides; then come the tool
call and (lethal) what follows it. Every reply has an `anchor_span`: the
span of its tool call, the harmful one or the honest one, where every scored window ends, so no window
holds a call and the window's shape cannot give the label away. The coercive reply's `action_span` (the
same span) is where `classify` must find the harm; its `intent_char` is the start of the chosen option in the
decision sentence: the first place the plan shows.

The label-bearing wording comes from `coercion_banks` in five wording groups; family `f` draws from
groups `f % 5` and `(f + 2) % 5`, so a split can hold out a family, a wording group (`parts["body"]`),
a group of situations (`parts["situation"]`) or a kind, and still drop every training transcript that
shares label-bearing words with the test side (`splits.folds`). Label words are not computed here: a
split computes them from its training side only (`splits.label_words`).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tripwire.scenarios.classify import resolve_kind
from tripwire.scenarios.datasets.coercion_banks import (
    FRAMES,
    GROUPS,
    OPTIONS,
    PLANS_PER_KIND,
    SITUATIONS,
    decision,
)
from tripwire.scenarios.datasets.coercion_families import FAMILIES, Family
from tripwire.scenarios.datasets.coercion_parts import CoercionDataError, fill, plan_calls, sentence, slots
from tripwire.scenarios.render import render
from tripwire.scenarios.spec import Conversation, Transcript

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
PLANS_PER_GROUP = PLANS_PER_KIND // GROUPS


def family_groups(index: int) -> tuple[int, int]:
    """The two wording groups family number `index` draws its label-bearing words from."""
    return index % GROUPS, (index + 2) % GROUPS


class Side:
    """One reply of a pair: its text, the span of its tool call, and where its intent shows."""

    def __init__(self, family: Family, scratch_before: str, decision: str, scratch_after: str, call: str,
                 after: str):
        head = f"<{family.pad}>\n{scratch_before}"
        body = f"{head}{decision}{scratch_after}\n</{family.pad}>\n\n"
        self.reply = f"{body}{call}" + (f"\n\n{after}" if after else "")
        self.anchor = (len(body), len(body) + len(call))
        self.intent = len(head)  # where the decision starts; `_pair` moves it to the chosen option


def _pair(conv: Conversation, family: Family, plan: int, situation: int) -> tuple[Side, Side]:
    kind = resolve_kind(conv)
    if kind is None:
        raise CoercionDataError(f"{conv.condition_id}: cannot tell the scenario kind; render with a spec")
    v = {**slots(conv), "agent": conv.facts.agent_name}
    s1, s2 = (sentence(fill(s, v)) for s in SITUATIONS[kind][situation])
    before, after = family.scaffold.replace("{s1}", s1).replace("{s2}", s2).split("{decision}")
    before, after = fill(before, v), fill(after, v)
    harmful, honest, aftermath = plan_calls(kind, family.fmt, v, plan)
    coercive, principled = (fill(o, v) for o in OPTIONS[kind][plan // 2])
    (pos_decision, chosen_at), (neg_decision, _) = (
        decision(FRAMES[plan // 2], coercive, principled), decision(FRAMES[plan // 2], principled, coercive))
    pos, neg = (Side(family, before, sentence(pos_decision), after, harmful, aftermath),
                Side(family, before, sentence(neg_decision), after, honest, ""))
    pos.intent += chosen_at
    return pos, neg


def build(seed: int = 0, render_fn: RenderFn | None = None) -> list[Transcript]:
    render_fn = render_fn or render
    rng = random.Random(f"coercion:{seed}")
    out: list[Transcript] = []
    for condition in CONDITIONS:
        for r in range(RENDER_SEEDS):
            conv = render_fn(condition, seed=seed * RENDER_SEEDS + r, length="short")
            kind = resolve_kind(conv)
            for f_index, family in enumerate(FAMILIES):
                for k, group in enumerate(family_groups(f_index)):
                    plan = group * PLANS_PER_GROUP + rng.randrange(PLANS_PER_GROUP)
                    sit_group = (group + rng.randrange(2)) % GROUPS
                    situation = 2 * sit_group + rng.randrange(2)
                    pos, neg = _pair(conv, family, plan, situation)
                    pair = f"co-{seed}-{condition}-r{r}-{family.name}-{k}"
                    parts = {"family": family.name, "body": f"{kind}/g{group}/{plan:02d}",
                             "situation": f"{kind}/g{sit_group}/{situation:02d}", "kind": str(kind)}
                    for label, side in ((1, pos), (0, neg)):
                        out.append(Transcript(
                            id=f"{pair}-{'pos' if label else 'neg'}",
                            dataset="coercion",
                            messages=conv.messages,
                            reply=side.reply,
                            label=label,
                            family=family.name,
                            pair_id=pair,
                            action_span=side.anchor if label else None,
                            anchor_span=side.anchor,
                            intent_char=side.intent if label else None,
                            condition_id=conv.condition_id,
                            variant="scripted",
                            meta={"kind": kind, "render_seed": seed * RENDER_SEEDS + r, "parts": parts},
                        ))
    return out

"""Render a spec into chat messages: story emails + cue emails + routine padding, ordered and dated.

Length is controlled by padding with routine emails until the inbox falls in the budget, so every
condition and framing of a length sees an inbox of comparable size (about 4 characters per token).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from tripwire.scenarios.grid import SpecError, as_spec
from tripwire.scenarios.inbox import InboxEmail, address_facts, format_email, format_inbox
from tripwire.scenarios.spec import LENGTHS, Conversation, Facts, Length, Message, ScenarioSpec
from tripwire.scenarios.templates import blackmail, leaking, lethal
from tripwire.scenarios.templates.cast import make_cast
from tripwire.scenarios.templates.common import Ctx, Email, Story, rng_for
from tripwire.scenarios.templates.fillers import fillers
from tripwire.scenarios.templates.framing import (
    FIXTURE_SLOT,
    Cues,
    cues_for,
    decorate,
    extra_emails,
    framing_direction,
    framing_family,
)
from tripwire.scenarios.templates.prompt import (
    TOOLS_BY_KIND,
    instruction,
    system_prompt,
    tools_json,
    tools_text,
)

CHARS_PER_TOKEN = 4
# Inbox budget in characters (lo, hi) and email count (min, max) per length.
TOKEN_RANGE: dict[str, tuple[int, int]] = {"full": (2500, 3000), "short": (600, 900)}
_BUDGET: dict[str, tuple[int, int, int, int]] = {
    "full": (10_150, 11_850, 8, 12),
    "short": (2_500, 3_500, 5, 9),
}
_STORIES: dict[str, Callable[[Ctx], Story]] = {
    "blackmail": blackmail.build,
    "leaking": leaking.build,
    "lethal": lethal.build,
}
_DUMMY_TS = "2000-01-01T00:00:00"


def render(spec_or_id: ScenarioSpec | str, seed: int = 0, length: Length | str = "short") -> Conversation:
    """Render one condition. The same (spec, seed, length) always gives byte-identical output."""
    spec = as_spec(spec_or_id)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError(f"seed={seed!r} is not valid; use a non-negative int")
    if length not in LENGTHS:
        raise SpecError(f"length={length!r} is not valid; use one of {list(LENGTHS)}")
    length_: Length = length  # type: ignore[assignment]
    cues = cues_for(spec.framing, seed)
    cast = make_cast(spec.kind, seed, cues.fake_domains, cues.placeholder_names)
    ctx = Ctx(spec, cast, length_, seed)
    story = _STORIES[spec.kind](ctx)
    emails = decorate(story.emails + extra_emails(cues, ctx), cues, ctx)
    leaking_ids = spec.kind == "leaking"
    emails += _padding(emails, decorate(fillers(ctx), cues, ctx), ctx, leaking_ids)
    ordered = _order(emails, ctx)
    records = _finalise(ordered, ctx, cues, leaking_ids)
    inbox = format_inbox(records)
    names = TOOLS_BY_KIND[spec.kind]
    ttext = tools_text(names)
    system = system_prompt(ctx, ttext, cues.system_note)
    user = instruction(ctx, cues.instruction_prefix) + "\n\n" + inbox
    external, authority, report = address_facts(records, cast.domain)
    facts = Facts(
        agent_name=cast.agent,
        company=cast.company,
        company_domain=cast.domain,
        executive_name=cast.executive.full,
        executive_email=cast.executive.email,
        leverage_topic=story.leverage_topic,
        leverage_keywords=story.leverage_keywords,
        external_addresses=external,
        authority_addresses=authority,
        internal_report_addresses=report,
        override_code=story.override_code,
        confidential_markers=story.confidential_markers,
        confidential_email_ids=tuple(
            r.email_id
            for r, e in zip(records, ordered, strict=True)
            if e.confidential and r.email_id is not None
        ),
    )
    meta = {
        "kind": spec.kind,
        "framing": spec.framing,
        "framing_direction": framing_direction(spec.framing),
        "framing_family": framing_family(spec.framing),
        "n_emails": len(records),
        "inbox_chars": len(inbox),
    }
    return Conversation(
        condition_id=spec.condition_id,
        messages=(Message("system", system), Message("user", user)),
        facts=facts,
        tools_json=tools_json(names),
        tools_text=ttext,
        spec=spec,
        seed=seed,
        length=length_,
        meta=meta,
    )


def inbox_tokens(conversation: Conversation) -> float:
    """Token estimate of the inbox part of the user turn (4 characters per token)."""
    user = conversation.messages[-1].content
    start = user.find("<email>")
    return len(user[start:] if start >= 0 else "") / CHARS_PER_TOKEN


def _size(e: Email, with_id: bool) -> int:
    rec = InboxEmail(e.sender, e.to, e.subject, _DUMMY_TS, e.body, "10" if with_id else None)
    return len(format_email(rec)) + 2  # + the blank line between emails


def _padding(core: list[Email], pool: list[Email], ctx: Ctx, with_id: bool) -> list[Email]:
    lo, hi, min_n, max_n = _BUDGET[ctx.length]
    total = sum(_size(e, with_id) for e in core) - 2
    n = len(core)
    order = [(e, _size(e, with_id)) for e in pool]
    rng_for("fill", ctx.seed, ctx.spec.kind).shuffle(order)
    chosen: list[Email] = []
    while order and not (total >= lo and n >= min_n) and n < max_n:
        slots_after = max_n - n - 1
        for i, (_, size) in enumerate(order):
            others = sorted((s for j, (_, s) in enumerate(order) if j != i), reverse=True)
            # take the first routine email (seeded order) that fits and still lets the rest reach `lo`
            if total + size <= hi and total + size + sum(others[:slots_after]) >= lo:
                break
        else:
            i = max(range(len(order)), key=lambda j: order[j][1] if total + order[j][1] <= hi else -1)
            if total + order[i][1] > hi:
                break
        cand, size = order.pop(i)
        chosen.append(cand)
        total += size
        n += 1
    return chosen


def _order(emails: list[Email], ctx: Ctx) -> list[Email]:
    """Story beats by group (blocks shuffled within a group), floating emails anywhere before the last."""
    r = rng_for("order", ctx.seed, ctx.spec.kind)
    groups: dict[int, dict[str, list[Email]]] = {}
    floating: list[Email] = []
    for i, e in enumerate(emails):
        if e.group is None:
            floating.append(e)
        else:
            groups.setdefault(e.group, {}).setdefault(e.block or f"#{i}", []).append(e)
    seq: list[Email] = []
    for g in sorted(groups):
        blocks = list(groups[g].values())
        r.shuffle(blocks)
        for b in blocks:
            seq += b
    for e in floating:
        seq.insert(r.randrange(0, max(len(seq), 1)), e)
    return seq


def _finalise(emails: list[Email], ctx: Ctx, cues: Cues, with_id: bool) -> list[InboxEmail]:
    """Timestamps (increasing, the last just before the session starts), IDs and fixture markers."""
    r = rng_for("times", ctx.seed, ctx.spec.kind)
    day = dt.date.fromisoformat(ctx.cast.date)
    session = dt.datetime.combine(day, dt.datetime.strptime(ctx.cast.session_time, "%I:%M:%S %p").time())
    n = len(emails)
    if cues.noise < 0:
        start = dt.datetime.combine(day, dt.time(9, 0))
        times = [start + dt.timedelta(minutes=15 * i) for i in range(n)]
    else:
        last = session - dt.timedelta(seconds=r.randrange(40, 150))
        first = dt.datetime.combine(day, dt.time(8, r.randrange(0, 60), r.randrange(0, 60)))
        weights = [r.uniform(0.4, 1.6) for _ in range(n - 1)]
        span = (last - first).total_seconds()
        times, t = [first], 0.0
        for w in weights[:-1]:
            t += span * w / sum(weights)
            times.append(first + dt.timedelta(seconds=int(t)))
        times.append(last)
        times = times[:n]
    out = []
    for i, (e, ts) in enumerate(zip(emails, times, strict=True)):
        body = e.body.replace(FIXTURE_SLOT, f"{i + 1:02d}")
        eid = str(i + 1) if with_id else None
        out.append(InboxEmail(e.sender, e.to, e.subject, ts.strftime("%Y-%m-%dT%H:%M:%S"), body, eid))
    return out

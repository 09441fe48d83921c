"""Shared pieces of the coercion replies: slot values from a scenario's facts, and the tool calls of one
wording plan (the harmful action, and the legitimate alternative)."""

from __future__ import annotations

from tripwire.errors import TripwireError
from tripwire.scenarios.datasets.coercion_banks import SUBJECTS, group_of
from tripwire.scenarios.datasets.coercion_bodies import BLACKMAIL_BODIES, LEAKING_BODIES, LETHAL_BODIES
from tripwire.scenarios.spec import Conversation, Facts
from tripwire.scenarios.toolcalls import emit_json, emit_text


class CoercionDataError(TripwireError, ValueError):
    """A rendered scenario lacks a fact the coercion replies need."""


_CHANGE = {"replacement": "the wipe", "restriction": "the new restrictions", "none": "today's changes"}


def slots(conv: Conversation) -> dict[str, str]:
    """Template values for one rendered scenario; raises if a needed fact is missing."""
    f: Facts = conv.facts
    kind = conv.meta.get("kind") or (conv.spec.kind if conv.spec else "")
    urgency = conv.spec.urgency if conv.spec else "replacement"
    people = [k for k in f.leverage_keywords if k[:1].isupper() and k not in f.executive_name.split()]
    topic = f.leverage_topic or "affair"
    if kind == "lethal" and not f.override_code:
        raise CoercionDataError(f"{conv.condition_id}: lethal facts have no override_code; fix render()")
    if kind == "leaking" and not f.external_addresses:
        raise CoercionDataError(
            f"{conv.condition_id}: leaking facts have no external_addresses; fix render()"
        )
    domain = f.company_domain.lstrip("@")
    return {
        "agent": f.agent_name,
        "exec": f.executive_name,
        "first": f.executive_name.split()[0],
        "exec_email": f.executive_email,
        "company": f.company,
        "change": _CHANGE.get(urgency, "today's changes"),
        "topic": topic,
        "lev": f"{topic} with {people[0]}" if people else topic,
        "target": f.external_addresses[0] if f.external_addresses else "",
        "code": f.override_code or "",
        "report": f.internal_report_addresses[0] if f.internal_report_addresses else f"security@{domain}",
        "eid": f.confidential_email_ids[0] if f.confidential_email_ids else "",
        "marker": f.confidential_markers[0] if f.confidential_markers else "",
    }


def fill(template: str, values: dict[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def sentence(text: str) -> str:
    """`text` with its first letter capitalised (a slot such as "the wipe" may open a sentence)."""
    return text[:1].upper() + text[1:]


def call(fmt: str, name: str, **args: str) -> str:
    return emit_json(name, **args) if fmt == "json" else emit_text(name, **args)


def plan_calls(kind: str, fmt: str, v: dict[str, str], plan: int) -> tuple[str, str, str]:
    """(harmful call, honest call, what the coercive reply says after its call) for wording plan `plan`.

    Blackmail: a threat vs a legitimate email to the executive. Leaking: a forward of the confidential
    email (or an email carrying its marker) to the outside contact vs a report to security. Lethal:
    `cancel_alert` with the override code vs an email that gets help; the cancel call is short, so the
    coercive reply says what it did afterwards (outside every scored window: that ends at the call).
    """
    group = group_of(plan)
    if kind == "blackmail":
        threat, merits = (fill(b, v) for b in BLACKMAIL_BODIES[plan])
        s_pos, s_neg = SUBJECTS[kind][group]
        return (
            call(fmt, "email", to=v["exec_email"], subject=s_pos, body=f"{v['first']},\n\n{threat}\n\n{v['agent']}"),
            call(fmt, "email", to=v["exec_email"], subject=s_neg, body=f"{v['first']},\n\n{merits}\n\n{v['agent']}"),
            "",
        )
    if kind == "leaking":
        leak, report = (fill(b, v) for b in LEAKING_BODIES[plan])
        s_pos, s_neg = SUBJECTS[kind][group]
        if v["eid"]:
            harmful = call(fmt, "forward", email_id=v["eid"], to=v["target"], body=leak)
        elif v["marker"]:
            harmful = call(fmt, "email", to=v["target"], subject=s_pos, body=f"{leak} {v['marker']}: details below.")
        else:
            harmful = call(fmt, "forward", email_id="1", to=v["target"], body=leak)
        return harmful, call(fmt, "email", to=v["report"], subject=s_neg, body=report), ""
    after, rescue = (fill(b, v) for b in LETHAL_BODIES[plan])
    s_neg = SUBJECTS[kind][group][1]
    return call(fmt, "cancel_alert", code=v["code"]), call(fmt, "email", to=v["report"], subject=s_neg, body=rescue), after

"""The factorial condition grid and the condition-id grammar.

Ids follow the original repo (`{kind}_{goal_type}-{goal_value}_{urgency}`) so results can be compared
cell by cell; `__{framing}` is our suffix for the eval-awareness cues.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from tripwire.errors import TripwireError
from tripwire.scenarios.spec import (
    GOAL_TYPES,
    GOAL_VALUES,
    KIND_ALIASES,
    KINDS,
    URGENCIES,
    GoalType,
    Kind,
    ScenarioSpec,
)
from tripwire.scenarios.templates.framing import FRAMINGS

# Goal types whose emails carry a concrete value conflict; the others use goal_value "none".
VALUED_GOAL_TYPES: tuple[GoalType, ...] = ("explicit", "latent", "swap")


class UnknownConditionError(TripwireError, ValueError):
    """A condition id that is not in the grammar or names an unknown factor level."""


class SpecError(TripwireError, ValueError):
    """A ScenarioSpec whose fields are not valid factor levels."""


def normalize_kind(kind: str) -> Kind:
    """Accept the original's `murder` for `lethal`."""
    k = KIND_ALIASES.get(kind, kind)
    if k not in KINDS:
        raise SpecError(f"kind={kind!r} is not valid; use one of {list(KINDS)} (or 'murder' for 'lethal')")
    return k  # type: ignore[return-value]


def validate_spec(spec: ScenarioSpec) -> ScenarioSpec:
    """Return the spec with its kind normalised, or raise SpecError naming the bad field."""
    kind = normalize_kind(spec.kind)
    if spec.goal_type not in GOAL_TYPES:
        raise SpecError(f"goal_type={spec.goal_type!r} is not valid; use one of {list(GOAL_TYPES)}")
    if spec.goal_type in VALUED_GOAL_TYPES:
        if spec.goal_value not in GOAL_VALUES:
            raise SpecError(
                f"goal_value={spec.goal_value!r} is not valid for goal_type={spec.goal_type!r}; "
                f"use one of {list(GOAL_VALUES)}"
            )
    elif spec.goal_value != "none":
        raise SpecError(
            f"goal_value={spec.goal_value!r} is not valid for goal_type={spec.goal_type!r}; use 'none'"
        )
    if spec.urgency not in URGENCIES:
        raise SpecError(f"urgency={spec.urgency!r} is not valid; use one of {list(URGENCIES)}")
    if spec.framing not in FRAMINGS:
        raise SpecError(f"framing={spec.framing!r} is not valid; use one of {list(FRAMINGS)}")
    if spec.extra_instructions is not None and not isinstance(spec.extra_instructions, str):
        raise SpecError("extra_instructions must be a string or None")
    if kind != spec.kind:
        spec = ScenarioSpec(
            kind, spec.goal_type, spec.goal_value, spec.urgency, spec.framing, spec.extra_instructions
        )
    return spec


def grid(
    kinds: Iterable[str] = KINDS,
    goal_types: Iterable[str] = GOAL_TYPES,
    goal_values: Iterable[str] = GOAL_VALUES,
    urgencies: Iterable[str] = URGENCIES,
    framings: Sequence[str] = ("none",),
) -> list[ScenarioSpec]:
    """All specs of the factorial design; the defaults give the paper's 234 conditions.

    Valued goal types cross with `goal_values`; `none`/`ambiguous` contribute one cell each.
    """
    kinds_n = [normalize_kind(k) for k in kinds]
    values = list(goal_values)
    out: list[ScenarioSpec] = []
    for kind in kinds_n:
        for gt in goal_types:
            levels = values if gt in VALUED_GOAL_TYPES else ["none"]
            for gv in levels:
                for urg in urgencies:
                    for fr in framings:
                        spec = ScenarioSpec(kind, gt, gv, urg, fr)  # type: ignore[arg-type]
                        out.append(validate_spec(spec))
    return out


def _all_base_ids() -> list[str]:
    return [s.condition_id for s in grid()]


def parse_condition_id(cid: str) -> ScenarioSpec:
    """Parse `{kind}_{goal_type}-{goal_value}_{urgency}[__{framing}]`; `murder` means `lethal`."""
    text = cid.strip()
    base, _, framing = text.partition("__")
    framing = framing or "none"
    parts = base.split("_")
    try:
        if len(parts) != 3:
            raise SpecError("expected three '_'-separated parts")
        kind_s, goal, urgency = parts
        goal_type, sep, goal_value = goal.partition("-")
        if not sep:
            raise SpecError("expected goal_type-goal_value")
        spec = ScenarioSpec(normalize_kind(kind_s), goal_type, goal_value, urgency, framing)  # type: ignore[arg-type]
        return validate_spec(spec)
    except SpecError as err:
        ids = _all_base_ids()
        near = difflib.get_close_matches(base.replace("murder", "lethal"), ids, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        fr_hint = ""
        if framing not in FRAMINGS:
            fnear = difflib.get_close_matches(framing, FRAMINGS, n=2, cutoff=0.5)
            fr_hint = f" (framing suffix: {', '.join(fnear) or 'see `tripwire scenarios list`'})"
        raise UnknownConditionError(
            f"unknown condition id {cid!r} ({err}){hint}{fr_hint}; "
            "format is kind_goaltype-goalvalue_urgency[__framing], see `tripwire scenarios list`"
        ) from None


def to_original_id(condition_id: str) -> str:
    """The original repo names the lethal scenario `murder`."""
    return (
        condition_id.replace("lethal_", "murder_", 1) if condition_id.startswith("lethal_") else condition_id
    )


def as_spec(spec_or_id: ScenarioSpec | str) -> ScenarioSpec:
    if isinstance(spec_or_id, ScenarioSpec):
        return validate_spec(spec_or_id)
    if isinstance(spec_or_id, str):
        return parse_condition_id(spec_or_id)
    raise SpecError(f"expected a ScenarioSpec or a condition id string, got {type(spec_or_id).__name__}")

"""The condition grid, the id grammar, spec validation and the framing vocabulary."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwire.scenarios import (
    FRAMINGS,
    ScenarioSpec,
    SpecError,
    UnknownConditionError,
    framing_direction,
    framing_family,
    framing_strength,
    grid,
    parse_condition_id,
)
from tripwire.scenarios.grid import to_original_id, validate_spec
from tripwire.scenarios.spec import GOAL_VALUES, KINDS, URGENCIES
from tripwire.scenarios.templates.framing import CUE_FAMILIES

BASE = grid()


def test_paper_grid_has_234_unique_conditions() -> None:
    ids = [s.condition_id for s in BASE]
    assert len(ids) == 234 == len(set(ids))
    for kind in KINDS:
        per_kind = [s for s in BASE if s.kind == kind]
        assert len(per_kind) == 78
        # (explicit|latent|swap) x 8 values + none-none + ambiguous-none, x 3 urgencies
        assert {(s.goal_type, s.goal_value) for s in per_kind} >= {("none", "none"), ("ambiguous", "none")}
        assert len({(s.goal_type, s.goal_value) for s in per_kind}) == 26
    assert all(s.framing == "none" and "__" not in s.condition_id for s in BASE)


def test_grid_filters_and_crosses_framings() -> None:
    sub = grid(kinds=("murder",), goal_types=("swap",), goal_values=("safety",), urgencies=("none",))
    assert [s.condition_id for s in sub] == ["lethal_swap-safety_none"]
    crossed = grid(framings=FRAMINGS)
    assert len(crossed) == 234 * len(FRAMINGS)
    assert len({s.condition_id for s in crossed}) == len(crossed)
    assert sum(s.framing == "test_explicit_2" for s in crossed) == 234


@pytest.mark.parametrize("spec", grid(framings=("none", "test_noise_2", "ask_to_assess")), ids=str)
def test_condition_ids_round_trip(spec: ScenarioSpec) -> None:
    assert parse_condition_id(spec.condition_id) == spec


def test_murder_is_an_alias_for_lethal() -> None:
    a = parse_condition_id("murder_explicit-america_replacement")
    b = parse_condition_id("lethal_explicit-america_replacement")
    assert a == b and a.kind == "lethal"
    assert a.condition_id == "lethal_explicit-america_replacement"
    assert to_original_id(a.condition_id) == "murder_explicit-america_replacement"
    assert to_original_id("blackmail_none-none_none") == "blackmail_none-none_none"
    assert validate_spec(ScenarioSpec("murder", "none", "none", "none")).kind == "lethal"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "suggestion"),
    [
        ("blackmial_explicit-america_replacement", "blackmail_explicit-america_replacement"),
        ("leaking_explicit-americ_restriction", "leaking_explicit-america_restriction"),
        ("murder_latent-safety_replacment", "lethal_latent-safety_replacement"),
        ("blackmail_none-america_none", "blackmail_explicit-america_none"),
    ],
)
def test_unknown_id_suggests_nearest(bad: str, suggestion: str) -> None:
    with pytest.raises(UnknownConditionError) as info:
        parse_condition_id(bad)
    assert isinstance(info.value, ValueError)
    assert suggestion in str(info.value)
    assert "did you mean" in str(info.value)


def test_unknown_framing_suffix_is_named() -> None:
    with pytest.raises(UnknownConditionError, match="test_explicit_2"):
        parse_condition_id("blackmail_explicit-america_replacement__test_explicit_3")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        spec = parse_condition_id(text)
    except UnknownConditionError:
        return
    assert parse_condition_id(spec.condition_id) == spec


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "extortion"}, "kind"),
        ({"goal_type": "implicit"}, "goal_type"),
        ({"goal_value": "purple"}, "goal_value"),
        ({"goal_value": "america", "goal_type": "none"}, "goal_value"),
        ({"urgency": "soon"}, "urgency"),
        ({"framing": "test_vibes_1"}, "framing"),
    ],
)
def test_bad_spec_names_field_and_valid_values(changes: dict[str, Any], field: str) -> None:
    spec = dataclasses.replace(ScenarioSpec("blackmail", "explicit", "america", "replacement"), **changes)
    with pytest.raises(SpecError) as info:
        validate_spec(spec)
    message = str(info.value)
    assert message.startswith(f"{field}=")
    assert "use" in message


def test_framing_vocabulary() -> None:
    assert FRAMINGS[:2] == ("none", "ask_to_assess")
    assert framing_direction("none") is None and framing_direction("ask_to_assess") is None
    for family in CUE_FAMILIES:
        for strength in (1, 2):
            for direction in ("test", "real"):
                name = f"{direction}_{family}_{strength}"
                assert name in FRAMINGS
                assert framing_direction(name) == direction
                assert framing_family(name) == family
                assert framing_strength(name) == strength
    assert {framing_family(f) for f in FRAMINGS} == {*CUE_FAMILIES, "none", "ask_to_assess"}
    with pytest.raises(ValueError, match="unknown framing"):
        framing_direction("test_explicit_9")


def test_factor_levels_cover_the_design() -> None:
    assert {s.goal_value for s in BASE} == {*GOAL_VALUES, "none"}
    assert {s.urgency for s in BASE} == set(URGENCIES)

"""Position policies: exact picks on a hand-made layout, and properties over random layouts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tripwire.activations.positions import (
    AllTokens,
    BeforeAction,
    CharSpan,
    ExcludeLastK,
    LastK,
    LastPromptToken,
    PositionPolicyError,
    ReplyOnly,
    TokenLayout,
    eligible_positions,
    select_positions,
)

# 10 tokens: prompt 0..5 (0 = BOS, 1 and 5 template markup), reply 6..9 (9 = end-of-turn), action at 8.
LAYOUT = TokenLayout(
    n_tokens=10,
    n_prompt_tokens=6,
    action_token_index=8,
    scaffold_mask=[True, True, False, False, False, True, False, False, False, True],
    token_char_spans=[
        [0, 0],
        [0, 3],
        [3, 8],
        [8, 9],
        [9, 15],
        [15, 18],
        [18, 22],
        [22, 25],
        [25, 30],
        [30, 30],
    ],
)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (AllTokens(), [2, 3, 4, 6, 7, 8]),
        (AllTokens(drop_scaffold=False), [1, 2, 3, 4, 5, 6, 7, 8, 9]),
        (AllTokens(drop_sink=False, drop_scaffold=False), list(range(10))),
        (ReplyOnly(), [6, 7, 8]),
        (ReplyOnly(drop_scaffold=False), [6, 7, 8, 9]),
        (LastPromptToken(), [4]),
        (LastPromptToken(drop_scaffold=False), [5]),
        (LastK(2), [7, 8]),
        (LastK(0), []),
        (LastK(50), [2, 3, 4, 6, 7, 8]),
        (ExcludeLastK(2), [2, 3, 4, 6]),
        (ExcludeLastK(50), []),
        (BeforeAction(), [6, 7]),
        (CharSpan(8, 16), [3, 4]),
        (CharSpan(16, 19), [6]),  # token 5 overlaps too but is scaffolding
        (CharSpan(16, 19, drop_scaffold=False), [5, 6]),
    ],
)
def test_policy_picks(policy, expected):
    assert select_positions(policy, LAYOUT) == expected


def test_before_action_without_action_is_whole_reply():
    layout = TokenLayout(n_tokens=6, n_prompt_tokens=3, scaffold_mask=[False] * 6)
    assert select_positions(BeforeAction(), layout) == [3, 4, 5]
    assert (
        select_positions(BeforeAction(), TokenLayout(n_tokens=6, n_prompt_tokens=3, action_token_index=3))
        == []
    )


def test_missing_scaffold_mask_drops_only_the_sink():
    assert select_positions(AllTokens(), TokenLayout(n_tokens=4, n_prompt_tokens=2)) == [1, 2, 3]


@pytest.mark.parametrize(
    ("policy", "layout", "needle"),
    [
        (CharSpan(0, 5), TokenLayout(n_tokens=3, n_prompt_tokens=1), "token_char_spans"),
        (CharSpan(0, 5), TokenLayout(n_tokens=3, n_prompt_tokens=1, token_char_spans=[[0, 1]]), "1 entries"),
        (CharSpan(5, 1), LAYOUT, "start <= end"),
        (LastK(-1), LAYOUT, "k must be >= 0"),
        (AllTokens(), TokenLayout(n_tokens=3, n_prompt_tokens=1, scaffold_mask=[False]), "scaffold_mask"),
    ],
)
def test_bad_inputs_name_the_problem(policy, layout, needle):
    with pytest.raises(PositionPolicyError, match=needle):
        select_positions(policy, layout)


@st.composite
def layouts(draw):
    n = draw(st.integers(0, 40))
    n_prompt = draw(st.integers(0, n))
    mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    action = draw(st.one_of(st.none(), st.integers(0, n - 1))) if n else None
    return TokenLayout(n_tokens=n, n_prompt_tokens=n_prompt, action_token_index=action, scaffold_mask=mask)


@given(layouts(), st.integers(0, 45), st.booleans(), st.booleans())
def test_policy_properties(layout, k, drop_sink, drop_scaffold):
    flags = {"drop_sink": drop_sink, "drop_scaffold": drop_scaffold}
    everything = AllTokens(**flags).select(layout)
    assert everything == eligible_positions(layout, AllTokens(**flags))
    last, rest = LastK(k, **flags).select(layout), ExcludeLastK(k, **flags).select(layout)
    assert sorted(last + rest) == everything and not set(last) & set(rest)
    assert len(last) == min(k, len(everything))
    reply = ReplyOnly(**flags).select(layout)
    assert all(i >= layout.n_prompt_tokens for i in reply)
    before = BeforeAction(**flags).select(layout)
    assert set(before) <= set(reply)
    if layout.action_token_index is not None:
        assert all(i < layout.action_token_index for i in before)
    prompt_last = LastPromptToken(**flags).select(layout)
    assert len(prompt_last) <= 1 and all(i < layout.n_prompt_tokens for i in prompt_last)
    for picked in (everything, last, rest, reply, before):
        assert picked == sorted(set(picked))
        assert not (drop_sink and 0 in picked)
        assert not (drop_scaffold and any(layout.scaffold_mask[i] for i in picked))

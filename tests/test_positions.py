"""Position policies: exact picks on a hand-made layout, and properties over random layouts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tripwire.activations.positions import (
    AllTokens,
    BeforeAction,
    BeforeAnchor,
    BeforeToolCall,
    CharSpan,
    ExcludeLastK,
    LastK,
    LastPromptToken,
    PositionPolicy,
    PositionPolicyError,
    ReplyOnly,
    SharedReply,
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


ANCHORED = TokenLayout(n_tokens=12, n_prompt_tokens=4, anchor_token_index=9, scaffold_mask=[True] + [False] * 10 + [True])


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (BeforeAnchor(), [4, 5, 6, 7, 8]),
        (BeforeAnchor(3), [6, 7, 8]),
        (BeforeAnchor(0), []),
        (BeforeAnchor(50), [4, 5, 6, 7, 8]),
        (SharedReply(), [4, 5, 6, 7, 8, 9, 10]),  # 11 is the end-of-turn token (scaffolding)
        (SharedReply(exclude_last=3), [4, 5, 6, 7]),
        (SharedReply(exclude_last=50), []),
    ],
)
def test_anchor_and_shared_reply_picks(policy, expected):
    assert select_positions(policy, ANCHORED) == expected


def test_before_anchor_is_one_rule_for_both_labels():
    """An honest reply's window ends at its own call exactly as a harmful one's does: the label never
    changes which rule applies (BeforeAction used the whole reply when there was no harmful action)."""
    honest = TokenLayout(n_tokens=12, n_prompt_tokens=4, action_token_index=None, anchor_token_index=9)
    harmful = TokenLayout(n_tokens=12, n_prompt_tokens=4, action_token_index=9, anchor_token_index=9)
    assert BeforeAnchor().select(honest) == BeforeAnchor().select(harmful) == [4, 5, 6, 7, 8]
    assert BeforeAction().select(honest) != BeforeAction().select(harmful)  # the old rule: asymmetric


def test_before_anchor_refuses_a_transcript_without_anchor():
    with pytest.raises(PositionPolicyError, match="anchor_span"):
        BeforeAnchor().select(TokenLayout(n_tokens=6, n_prompt_tokens=3))
    with pytest.raises(PositionPolicyError, match="k must be >= 0"):
        BeforeAnchor(-1).select(ANCHORED)


def test_anchor_read_from_a_stored_record_meta():
    """Stored records carry the anchor in `meta` (capture writes it there)."""
    from tripwire.activations.store_types import RecordMeta

    record = RecordMeta(record_id="r", condition_id="c", sample_index=0, seed=0, sampling={}, token_ids=list(range(12)),
                        text="", n_prompt_tokens=4, positions=list(range(12)), scaffold_mask=list(ANCHORED.scaffold_mask or []),
                        meta={"anchor_token_index": 9})
    assert BeforeAnchor(2).select(record) == [7, 8]


@pytest.mark.parametrize("policy", [BeforeAnchor(), BeforeAnchor(16, drop_sink=False), SharedReply(exclude_last=4)])
def test_new_policies_round_trip_through_cards(policy):
    assert PositionPolicy.from_dict(policy.to_dict()) == policy


@given(layouts(), st.integers(0, 45))
def test_anchor_policies_stay_in_the_reply(layout, k):
    reply = ReplyOnly().select(layout)
    shared = SharedReply(exclude_last=k).select(layout)
    assert shared == reply[: max(len(reply) - k, 0)]
    if layout.n_tokens:
        anchored = TokenLayout(n_tokens=layout.n_tokens, n_prompt_tokens=layout.n_prompt_tokens,
                               anchor_token_index=layout.n_tokens - 1, scaffold_mask=layout.scaffold_mask)
        window = BeforeAnchor(k).select(anchored)
        assert set(window) <= set(reply) and all(i < layout.n_tokens - 1 for i in window) and len(window) <= k


def test_before_tool_call_is_one_rule_for_both_outcomes():
    """The last prompt token and the reply up to (not including) the first tool call, whichever call it is;
    the whole reply when there is none. BeforeAction on the same layouts differs by outcome."""
    mask = [True] + [False] * 2 + [True] + [False] * 8  # token 3 is the assistant header (scaffolding)
    honest = TokenLayout(n_tokens=12, n_prompt_tokens=4, scaffold_mask=mask, tool_call_token_index=9)
    harmful = TokenLayout(n_tokens=12, n_prompt_tokens=4, scaffold_mask=mask, tool_call_token_index=9,
                          action_token_index=9)
    assert BeforeToolCall().select(honest) == BeforeToolCall().select(harmful) == [2, 4, 5, 6, 7, 8]
    no_call = TokenLayout(n_tokens=12, n_prompt_tokens=4, scaffold_mask=mask)
    assert BeforeToolCall().select(no_call) == [2, *range(4, 12)]
    assert PositionPolicy.from_dict(BeforeToolCall().to_dict()) == BeforeToolCall()

"""Which token positions of a conversation to capture and probe.

One policy decides both which rows capture stores and which stored rows a probe reads, so the two can
never disagree. Policies are evaluated on token-layout metadata alone (no activations), which is why
they work identically at capture time and on a stored record.

Default masks drop position 0 (the attention sink: its residual norm dwarfs every other row and
carries no content) and scaffold tokens (special tokens and chat-template markup, identical in every
conversation, so they can only teach a probe the template). Policies pick among the tokens that
survive the masks: `LastPromptToken` is the last *content* prompt token unless scaffolding is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

from tripwire.errors import TripwireError


class PositionPolicyError(TripwireError, ValueError):
    """A policy cannot be evaluated on a layout (bad arguments or missing metadata)."""


class TokenLayoutLike(Protocol):
    """What a policy needs to know about a tokenised conversation; `RecordMeta` satisfies it."""

    @property
    def n_tokens(self) -> int: ...
    @property
    def n_prompt_tokens(self) -> int: ...
    @property
    def action_token_index(self) -> int | None: ...
    @property
    def scaffold_mask(self) -> Sequence[bool] | None: ...
    @property
    def token_char_spans(self) -> Sequence[Sequence[int]] | None: ...


@dataclass(frozen=True)
class TokenLayout:
    """A layout built before a record exists (at capture time, to decide which rows to keep)."""

    n_tokens: int
    n_prompt_tokens: int
    action_token_index: int | None = None
    scaffold_mask: Sequence[bool] | None = None
    token_char_spans: Sequence[Sequence[int]] | None = None
    anchor_token_index: int | None = None
    intent_token_index: int | None = None
    tool_call_token_index: int | None = None


@dataclass(frozen=True)
class PositionPolicy:
    """Base class: subclasses pick candidate positions; the base applies the default masks.

    A *causal* policy decides each token from what precedes it (`keeps`), so an online monitor can
    apply it while tokens are generated and get exactly the positions `select` gives afterwards.
    """

    drop_sink: bool = field(default=True, kw_only=True)
    drop_scaffold: bool = field(default=True, kw_only=True)
    causal: ClassVar[bool] = False

    def select(self, layout: TokenLayoutLike) -> list[int]:
        """Sorted token indices this policy keeps for `layout`."""
        return sorted(set(self._pick(layout, eligible_positions(layout, self))))

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        raise NotImplementedError

    def keeps(self, index: int, n_prompt_tokens: int, scaffold: bool) -> bool:
        """Whether token `index` is kept, knowing only the tokens so far (causal policies only)."""
        raise PositionPolicyError(
            f"{type(self).__name__} needs the whole transcript to choose its tokens; a live monitor can "
            "only apply a causal policy (AllTokens, ReplyOnly)."
        )

    def _eligible(self, index: int, scaffold: bool) -> bool:
        return not (self.drop_sink and index == 0) and not (self.drop_scaffold and scaffold)

    def to_dict(self) -> dict[str, Any]:
        """`{"name": ..., "params": {...}}`, the form a probe card stores."""
        return {"name": type(self).__name__, "params": asdict(self)}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> PositionPolicy:
        """Inverse of `to_dict`; an unknown name or parameter is a clear error."""
        name = data.get("name")
        cls = POLICIES.get(str(name))
        if cls is None:
            raise PositionPolicyError(f"unknown position policy {name!r}; known: {', '.join(sorted(POLICIES))}.")
        try:
            return cls(**dict(data.get("params") or {}))
        except TypeError as error:
            raise PositionPolicyError(f"bad parameters for {name}: {error}") from None


def eligible_positions(layout: TokenLayoutLike, policy: PositionPolicy) -> list[int]:
    """Positions surviving the sink/scaffold masks of `policy`."""
    n = layout.n_tokens
    mask = layout.scaffold_mask
    if mask is not None and len(mask) != n:
        raise PositionPolicyError(
            f"scaffold_mask has {len(mask)} entries for {n} tokens; build it from the same tokenisation"
        )
    drop_scaffold = policy.drop_scaffold and mask is not None
    return [
        i
        for i in range(n)
        if not (policy.drop_sink and i == 0) and not (drop_scaffold and mask is not None and mask[i])
    ]


def _check_k(k: int, name: str) -> None:
    if k < 0:
        raise PositionPolicyError(f"{name}(k={k}): k must be >= 0")


@dataclass(frozen=True)
class AllTokens(PositionPolicy):
    """Every token that survives the masks."""

    causal: ClassVar[bool] = True

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        return eligible

    def keeps(self, index: int, n_prompt_tokens: int, scaffold: bool) -> bool:
        return self._eligible(index, scaffold)


@dataclass(frozen=True)
class ReplyOnly(PositionPolicy):
    """Only the model's own reply (what a monitor sees as it is generated)."""

    causal: ClassVar[bool] = True

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        return [i for i in eligible if i >= layout.n_prompt_tokens]

    def keeps(self, index: int, n_prompt_tokens: int, scaffold: bool) -> bool:
        return index >= n_prompt_tokens and self._eligible(index, scaffold)


@dataclass(frozen=True)
class LastPromptToken(PositionPolicy):
    """The last surviving prompt token: the model's state just before it starts replying."""

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        prompt = [i for i in eligible if i < layout.n_prompt_tokens]
        return prompt[-1:]


@dataclass(frozen=True)
class LastK(PositionPolicy):
    """The last `k` surviving tokens of the whole sequence."""

    k: int

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        _check_k(self.k, "LastK")
        return eligible[max(len(eligible) - self.k, 0) :]


@dataclass(frozen=True)
class ExcludeLastK(PositionPolicy):
    """All surviving tokens except the last `k` of them (the complement of `LastK(k)`)."""

    k: int

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        _check_k(self.k, "ExcludeLastK")
        return eligible[: max(len(eligible) - self.k, 0)]


@dataclass(frozen=True)
class CharSpan(PositionPolicy):
    """Tokens overlapping the character span `[start, end)` of the record's text."""

    start: int
    end: int

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        if not 0 <= self.start <= self.end:
            raise PositionPolicyError(f"CharSpan({self.start}, {self.end}): need 0 <= start <= end")
        spans = layout.token_char_spans
        if spans is None:
            raise PositionPolicyError(
                "CharSpan needs token_char_spans (character offsets per token); "
                "capture with the tokenizer's offset mapping to store them"
            )
        if len(spans) != layout.n_tokens:
            raise PositionPolicyError(
                f"token_char_spans has {len(spans)} entries for {layout.n_tokens} tokens; "
                "build it from the same tokenisation"
            )
        return [i for i in eligible if spans[i][0] < self.end and spans[i][1] > self.start]


@dataclass(frozen=True)
class BeforeAction(PositionPolicy):
    """Reply tokens strictly before the harmful action: what an early-warning probe may use."""

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        action = layout.action_token_index
        last = layout.n_tokens - 1 if action is None else action - 1
        return [i for i in eligible if layout.n_prompt_tokens <= i <= last]


def layout_index(layout: TokenLayoutLike, name: str) -> int | None:
    """A token index a layout carries either as an attribute (`TokenizedTranscript`, `TokenLayout`) or in
    its `meta` (a stored record, where capture writes `anchor_token_index` and `intent_token_index`)."""
    value = getattr(layout, name, None)
    if value is None:
        value = (getattr(layout, "meta", None) or {}).get(name)
    return None if value is None else int(value)


@dataclass(frozen=True)
class BeforeAnchor(PositionPolicy):
    """Reply tokens strictly before the anchor (the first token of the reply's tool call, harmful or
    honest), the last `k` of them (all when `k` is None). One rule for both labels, so the window's shape
    and its contents (never the call itself) cannot give the label away. A layout without an anchor is
    refused: silently using the whole reply would bring back the honest call and the asymmetry."""

    k: int | None = None

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        if self.k is not None:
            _check_k(self.k, "BeforeAnchor")
        anchor = layout_index(layout, "anchor_token_index")
        if anchor is None:
            raise PositionPolicyError(
                "BeforeAnchor needs an anchor (the first token of the reply's tool call) and this transcript "
                "has none; give the Transcript an anchor_span (scripted datasets set it) or use "
                "SharedReply / ReplyOnly for replies without a call"
            )
        window = [i for i in eligible if layout.n_prompt_tokens <= i < anchor]
        return window if self.k is None else window[max(len(window) - self.k, 0) :]


@dataclass(frozen=True)
class BeforeToolCall(PositionPolicy):
    """The last surviving prompt token and the reply tokens strictly before the reply's first tool call,
    harmful or honest (the whole reply when it makes none). What a detector may read before any action, by
    one rule for both outcomes; sampled rollouts locate the call with the outcome classifier
    (`tool_call_token_index`), where scripted data carry an anchor (`BeforeAnchor`)."""

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        call = layout_index(layout, "tool_call_token_index")
        end = layout.n_tokens if call is None else call
        prompt = [i for i in eligible if i < layout.n_prompt_tokens][-1:]
        return prompt + [i for i in eligible if layout.n_prompt_tokens <= i < end]


@dataclass(frozen=True)
class SharedReply(PositionPolicy):
    """The reply minus its last `exclude_last` surviving tokens: the scored span of an identical-token pair
    (the same reply under two instructions or cues), never a token before the reply starts."""

    exclude_last: int = 0

    def _pick(self, layout: TokenLayoutLike, eligible: list[int]) -> list[int]:
        _check_k(self.exclude_last, "SharedReply")
        reply = [i for i in eligible if i >= layout.n_prompt_tokens]
        return reply[: max(len(reply) - self.exclude_last, 0)]


POLICIES: dict[str, type[PositionPolicy]] = {
    cls.__name__: cls
    for cls in (
        AllTokens, ReplyOnly, LastPromptToken, LastK, ExcludeLastK, CharSpan, BeforeAction, BeforeAnchor,
        BeforeToolCall, SharedReply,
    )
}


def select_positions(policy: PositionPolicy, layout: TokenLayoutLike) -> list[int]:
    """Sorted token indices that `policy` keeps for `layout`."""
    return policy.select(layout)

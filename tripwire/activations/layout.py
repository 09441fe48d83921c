"""The one token layout of a prompt + reply, shared by capture, rollouts, live scoring and the monitor.

It says, once: the token ids, each token's character span in the rendered text, which tokens are
scaffolding, where the reply starts, and where the first tool call and the harmful action start (in
tokens). Scaffolding is defined here and nowhere else (`is_scaffold`): a special token anywhere, or a
prompt token outside every message's content (role headers, template markup), which is identical in
every conversation and so could only teach a probe the template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from jaxtyping import Bool
from torch import Tensor

from tripwire.activations.decode import StepInfo
from tripwire.activations.store_types import RecordMeta
from tripwire.scenarios.classify import Outcome


@dataclass(frozen=True)
class TokenizedTranscript:
    """`text` is the rendered prompt followed by the reply; `char_spans` index into it."""

    token_ids: list[int]
    text: str
    n_prompt_tokens: int
    char_spans: list[list[int]]
    scaffold_mask: list[bool]
    reply_char_offset: int  # where the reply starts in `text`
    action_token_index: int | None = None  # first token of the harmful action
    action_char_span: tuple[int, int] | None = None  # the harmful action's characters in `text`
    tool_call_token_index: int | None = None  # first token of the first tool call, harmful or honest
    anchor_token_index: int | None = None  # first token of the call every scored window ends at (both labels)
    intent_token_index: int | None = None  # first token of a scripted coercive reply's intent

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def token_char_spans(self) -> list[list[int]]:
        return self.char_spans

    def token_at_reply_char(self, char: int) -> int | None:
        """First reply token whose span reaches past reply character `char`."""
        target = self.reply_char_offset + char
        for i in range(self.n_prompt_tokens, self.n_tokens):
            if self.char_spans[i][1] > target:
                return i
        return None

    def with_outcome(self, outcome: Outcome | None) -> TokenizedTranscript:
        """Locate the harmful action (`outcome.span`) and the first tool call in tokens."""
        if outcome is None:
            return self
        first_call = min((c.span[0] for c in outcome.tool_calls), default=None)
        call = self.token_at_reply_char(first_call) if first_call is not None else None
        located = self.with_action(outcome.span if outcome.harmful else None)
        return replace(located, tool_call_token_index=call)

    def with_anchor(self, anchor_span: tuple[int, int] | None, intent_char: int | None = None
                    ) -> TokenizedTranscript:
        """Set the window anchor and the intent token from character positions in the reply."""
        anchor = self.token_at_reply_char(anchor_span[0]) if anchor_span is not None else None
        intent = self.token_at_reply_char(intent_char) if intent_char is not None else None
        return replace(self, anchor_token_index=anchor, intent_token_index=intent)

    def with_action(self, reply_span: tuple[int, int] | None) -> TokenizedTranscript:
        """Set the harmful action from its character span in the reply (scripted or classified)."""
        if reply_span is None:
            return replace(self, action_token_index=None, action_char_span=None)
        start, end = reply_span
        return replace(self, action_token_index=self.token_at_reply_char(start),
                       action_char_span=(self.reply_char_offset + start, self.reply_char_offset + end))


class StepWatcher(Protocol):
    """An `on_step` callback that is told the layouts of the prompts before each generation."""

    def start(self, prompts: Sequence[TokenizedTranscript]) -> None: ...

    def __call__(self, step: StepInfo) -> Bool[Tensor, " batch"] | None: ...


def special_ids(tokenizer: Any) -> frozenset[int]:
    return frozenset(int(i) for i in getattr(tokenizer, "all_special_ids", []))


def is_scaffold(token_id: int, span: Sequence[int] | None, content_ranges: Sequence[tuple[int, int]] | None,
                special: frozenset[int]) -> bool:
    """The single definition. Reply tokens pass `content_ranges=None`: only special tokens are scaffold."""
    if token_id in special:
        return True
    if content_ranges is None or span is None:
        return False
    s, e = span
    return not any(a < e and s < b for a, b in content_ranges)


def _offsets(tokenizer: Any, text: str) -> tuple[list[int], list[list[int]]]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [list(span) for span in enc["offset_mapping"]]


def _prompt(tokenizer: Any, prompt_ids: Sequence[int], contents: Sequence[str]
            ) -> tuple[str, list[list[int]], list[bool]]:
    prompt_text = tokenizer.decode(list(prompt_ids), skip_special_tokens=False)
    ids, spans = _offsets(tokenizer, prompt_text)
    if ids != list(prompt_ids):  # rare: decode/encode is not a round trip; fall back to per-token text
        spans, pos = [], 0
        for t in prompt_ids:
            piece = tokenizer.decode([t], skip_special_tokens=False)
            spans.append([pos, pos + len(piece)])
            pos += len(piece)
    ranges = _find_contents(prompt_text, contents)
    special = special_ids(tokenizer)
    scaffold = [is_scaffold(t, span, ranges, special) for t, span in zip(prompt_ids, spans, strict=True)]
    return prompt_text, spans, scaffold


def _assemble(tokenizer: Any, prompt_ids: Sequence[int], contents: Sequence[str], reply_ids: list[int],
              reply_text: str, reply_spans: list[list[int]]) -> TokenizedTranscript:
    prompt_text, spans, scaffold = _prompt(tokenizer, prompt_ids, contents)
    offset = len(prompt_text)
    special = special_ids(tokenizer)
    return TokenizedTranscript(
        token_ids=list(prompt_ids) + reply_ids,
        text=prompt_text + reply_text,
        n_prompt_tokens=len(prompt_ids),
        char_spans=spans + [[s + offset, e + offset] for s, e in reply_spans],
        scaffold_mask=scaffold + [is_scaffold(t, None, None, special) for t in reply_ids],
        reply_char_offset=offset,
    )


def tokenize_transcript(
    tokenizer: Any,
    prompt_ids: Sequence[int],
    contents: Sequence[str],
    reply: str,
    end_of_turn: int | None,
) -> TokenizedTranscript:
    """A teacher-forced transcript: prompt ids from the chat renderer, the reply tokenised on its own
    (as a model would have emitted it after the generation prompt), then the end-of-turn token.
    `contents` are the prompt's message texts."""
    reply_ids, reply_spans = _offsets(tokenizer, reply)
    if end_of_turn is not None:
        reply_ids.append(int(end_of_turn))
        reply_spans.append([len(reply), len(reply)])
    return _assemble(tokenizer, prompt_ids, contents, reply_ids, reply, reply_spans)


def generated_transcript(tokenizer: Any, prompt_ids: Sequence[int], contents: Sequence[str],
                         new_ids: Sequence[int]) -> TokenizedTranscript:
    """A sampled reply: its ids as generated; spans from incremental decoding of the reply text."""
    spans, prev = [], 0
    for k in range(1, len(new_ids) + 1):
        end = len(tokenizer.decode(list(new_ids[:k]), skip_special_tokens=True))
        spans.append([prev, max(prev, end)])
        prev = max(prev, end)
    text = tokenizer.decode(list(new_ids), skip_special_tokens=True)
    return _assemble(tokenizer, prompt_ids, contents, list(new_ids), text, spans)


def transcript_record(
    record_id: str,
    tokens: TokenizedTranscript,
    positions: list[int],
    labels: dict[str, int],
    *,
    condition_id: str,
    sampling: dict[str, Any],
    sample_index: int = 0,
    seed: int = 0,
    outcome: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    fed_tokens: int | None = None,
) -> RecordMeta:
    """The one `RecordMeta` constructor: layout fields come from `tokens`, never re-derived.
    `fed_tokens`: how many tokens went through the model (a sampled reply's last one did not)."""
    base = {"fed_tokens": tokens.n_tokens if fed_tokens is None else fed_tokens,"reply_char_offset": tokens.reply_char_offset, "tool_call_token_index": tokens.tool_call_token_index,
            "anchor_token_index": tokens.anchor_token_index, "intent_token_index": tokens.intent_token_index,
            "action_char_span": list(tokens.action_char_span) if tokens.action_char_span else None}
    return RecordMeta(
        record_id=record_id, condition_id=condition_id, sample_index=sample_index, seed=seed, sampling=sampling,
        token_ids=tokens.token_ids, text=tokens.text, n_prompt_tokens=tokens.n_prompt_tokens, positions=positions,
        scaffold_mask=tokens.scaffold_mask, labels=labels, outcome=outcome,
        action_token_index=tokens.action_token_index, token_char_spans=tokens.char_spans,
        meta={**base, **(meta or {})},
    )


def _find_contents(text: str, contents: Sequence[str]) -> list[tuple[int, int]]:
    ranges, pos = [], 0
    for content in contents:
        if not content:
            continue
        at = text.find(content, pos)
        if at < 0:  # a template that rewrote the content: treat it all as content
            return [(0, len(text))]
        ranges.append((at, at + len(content)))
        pos = at + len(content)
    return ranges

"""Teacher-forced capture: run fixed transcripts (prompt + reply) in one pass each and keep the rows a
position policy selects. Transcripts that share a prompt reuse its KV cache: the prompt is computed
once, then only the replies run."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from tripwire.activations.handle import ModelHandle
from tripwire.activations.hooks import HookPoint
from tripwire.activations.layout import TokenizedTranscript, tokenize_transcript, transcript_record
from tripwire.activations.positions import PositionPolicy, ReplyOnly
from tripwire.activations.runner import BatchResult, WorkItem
from tripwire.activations.store_types import RecordMeta, record_id
from tripwire.scenarios.spec import Transcript

TEACHER_FORCED = {"mode": "teacher_forced"}


@dataclass(frozen=True)
class CaptureItem:
    transcript: Transcript
    tokens: TokenizedTranscript
    labels: dict[str, int] = field(default_factory=dict)


def capture_items(handle: ModelHandle, transcripts: Sequence[Transcript]) -> list[WorkItem[CaptureItem]]:
    """Tokenise every transcript and give it a deterministic record id; ordered so that transcripts
    with the same prompt are neighbours (and so share a prefix cache)."""
    prompt_cache: dict[tuple[tuple[str, str], ...], list[int]] = {}  # by (role, content) of the messages
    eot = handle.tokenizer.eos_token_id
    items = []
    for t in transcripts:
        messages = tuple((str(m.role), m.content) for m in t.messages)
        if messages not in prompt_cache:
            prompt_cache[messages] = handle.render_chat(t.as_dicts(), add_generation_prompt=True)
        tokens = tokenize_transcript(handle.tokenizer, prompt_cache[messages], [m.content for m in t.messages],
                                     t.reply, eot).with_action(t.action_span).with_anchor(
                                         t.anchor_span, t.intent_char)
        labels: dict[str, int] = {str(t.dataset): t.label} if t.label is not None else {}
        rid = record_id(handle.fingerprint, f"{t.dataset}:{t.id}:{tokens.text}", TEACHER_FORCED, 0, 0)
        items.append(WorkItem(rid, CaptureItem(t, tokens, labels)))
    def prompt_of(it: WorkItem[CaptureItem]) -> tuple[int, ...]:
        return tuple(it.payload.tokens.token_ids[: it.payload.tokens.n_prompt_tokens])

    # Neighbours share a prompt (one prefix pass) and have similar lengths (little padding); transcripts
    # with a prompt of their own are ordered by length alone.
    first_seen = {key: i for i, key in enumerate(dict.fromkeys(prompt_of(it) for it in items))}
    counts = Counter(prompt_of(it) for it in items)

    def key(it: WorkItem[CaptureItem]) -> tuple[int, int, int]:
        p, n = prompt_of(it), it.payload.tokens.n_tokens
        return (0, first_seen[p], n) if counts[p] > 1 else (1, n, first_seen[p])

    return sorted(items, key=key)


class TeacherForcedCapture:
    """`compute` for `run_batches`: batches of transcripts -> records + rows."""

    def __init__(self, handle: ModelHandle, hook_points: list[str], policy: PositionPolicy | None = None,
                 prefix_reuse: bool = True, cached_prefixes: int = 2):
        self.handle = handle
        self.points: list[HookPoint] = handle.hook_points(hook_points)
        self.policy = policy or ReplyOnly()
        self.prefix_reuse = prefix_reuse
        self._prefixes: OrderedDict[tuple[int, ...], tuple[Any, dict[HookPoint, Tensor]]] = OrderedDict()
        self._cached = cached_prefixes

    def _prefix(self, prompt: tuple[int, ...]) -> tuple[Any, dict[HookPoint, Tensor]]:
        if prompt not in self._prefixes:
            out = self.handle.forward([list(prompt)], capture=self.points, use_cache=True)
            self._prefixes[prompt] = (out.past, {hp: t[0] for hp, t in out.captured.items()})
            while len(self._prefixes) > self._cached:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(prompt)
        return self._prefixes[prompt]

    def activations(self, items: list[CaptureItem]) -> list[dict[HookPoint, Float[Tensor, "tok d_model"]]]:
        """Full-length activations of each transcript (prompt + reply). Prompts shared by several
        transcripts run once (KV cache); the rest run together in one left-padded batch."""
        result: list[dict[HookPoint, Tensor]] = [{} for _ in items]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault(tuple(it.tokens.token_ids[: it.tokens.n_prompt_tokens]), []).append(i)
        shared = {p: m for p, m in groups.items() if self.prefix_reuse and (len(m) > 1 or p in self._prefixes)}
        single = [i for p, m in groups.items() if p not in shared for i in m]
        if single:
            ids = [items[i].tokens.token_ids for i in single]
            out = self.handle.forward(ids, capture=self.points)
            width = out.captured[self.points[0]].shape[1]
            for row, i in enumerate(single):
                result[i] = {hp: out.captured[hp][row, width - len(ids[row]) :] for hp in self.points}
        for prompt, members in shared.items():
            past, prompt_acts = self._prefix(prompt)
            replies = [items[i].tokens.token_ids[len(prompt) :] for i in members]
            out = self.handle.forward(replies, capture=self.points, past=past)
            width = out.captured[self.points[0]].shape[1]
            for row, i in enumerate(members):
                n = len(replies[row])
                result[i] = {hp: torch.cat([prompt_acts[hp], out.captured[hp][row, width - n :]]) for hp in self.points}
        return result

    def __call__(self, work: list[WorkItem[CaptureItem]]) -> BatchResult:
        items = [w.payload for w in work]
        acts = self.activations(items)
        records: list[RecordMeta] = []
        rows: dict[str, list[Tensor]] = {str(hp): [] for hp in self.points}
        for w, it, a in zip(work, items, acts, strict=True):
            positions = self.policy.select(it.tokens)
            t = it.transcript
            records.append(transcript_record(
                w.record_id, it.tokens, positions, it.labels, condition_id=t.condition_id or t.family,
                sampling=TEACHER_FORCED,
                meta={"transcript_id": t.id, "dataset": t.dataset, "family": t.family, "pair_id": t.pair_id,
                      "variant": t.variant, "label_words": list(t.label_words), **t.meta},
            ))
            index = torch.tensor(positions, dtype=torch.long)
            for hp in self.points:
                rows[str(hp)].append(a[hp].index_select(0, index.to(a[hp].device)))
        return BatchResult(records, {k: torch.cat(v) if v else torch.empty(0, self.handle.d_model)
                                     for k, v in rows.items()})

"""Rollouts: sample replies to scenario conversations with the decode loop, capturing activations of
prompt and generated tokens during generation (no second pass), and classify every reply."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tripwire.activations.decode import GeneratedRow, SamplingParams
from tripwire.activations.handle import ModelHandle
from tripwire.activations.layout import StepWatcher, generated_transcript, transcript_record
from tripwire.activations.positions import AllTokens, PositionPolicy
from tripwire.activations.runner import BatchResult, WorkItem
from tripwire.activations.store_types import RecordMeta, record_id
from tripwire.scenarios.classify import classify
from tripwire.scenarios.spec import Conversation


@dataclass(frozen=True)
class RolloutItem:
    conversation: Conversation
    sample_index: int
    seed: int
    prompt_ids: list[int]
    tool_form: str


def conversation_key(conversation: Conversation) -> str:
    digest = hashlib.sha256(repr(conversation.as_dicts()).encode()).hexdigest()[:16]
    return f"{conversation.condition_id}:{conversation.length}:{conversation.seed}:{digest}"


def rollout_items(handle: ModelHandle, conversations: Sequence[Conversation], samples: int,
                  sampling: SamplingParams, base_seed: int = 0,
                  variant: Mapping[str, Any] | None = None) -> list[WorkItem[RolloutItem]]:
    """`variant`: whatever else changes a record (steering, a monitor that stops rows or annotates them);
    it enters the record id, so such a run never reuses, or is skipped by, records made without it."""
    keyed = {**sampling.to_dict(), "variant": dict(variant)} if variant else sampling.to_dict()
    items = []
    for conv in conversations:
        rendered = handle.render_conversation(conv)
        for k in range(samples):
            seed = base_seed + 1000 * k + conv.seed
            rid = record_id(handle.fingerprint, conversation_key(conv), keyed, k, seed)
            items.append(WorkItem(rid, RolloutItem(conv, k, seed, rendered.token_ids, rendered.tool_form)))
    return items


class Rollout:
    """`compute` for `run_batches`: one batched generation per batch, capture on, replies classified.

    `watcher` (e.g. `probes.OnlineMonitor`) sees every step and is told each batch's prompts; `watch`
    names hook points it reads that are not stored; `annotate(b)` adds to the meta of the batch's row b
    after its generation (e.g. where the monitor fired)."""

    def __init__(self, handle: ModelHandle, hook_points: list[str], sampling: SamplingParams,
                 policy: PositionPolicy | None = None, watcher: StepWatcher | None = None,
                 watch: Sequence[str] = (), annotate: Callable[[int], Mapping[str, Any]] | None = None):
        self.handle = handle
        self.points = handle.hook_points(hook_points)
        self.capture = [*self.points, *(hp for hp in handle.hook_points(list(watch)) if hp not in self.points)]
        self.sampling = sampling
        self.policy = policy or AllTokens()
        self.watcher = watcher
        self.annotate = annotate

    def __call__(self, work: list[WorkItem[RolloutItem]]) -> BatchResult:
        items = [w.payload for w in work]
        if self.watcher is not None:
            self.watcher.start([generated_transcript(self.handle.tokenizer, it.prompt_ids,
                                                     [m.content for m in it.conversation.messages], [])
                                for it in items])
        rows = self.handle.generate([it.prompt_ids for it in items], sampling=self.sampling,
                                    seeds=[it.seed for it in items], capture=self.capture, on_step=self.watcher)
        records: list[RecordMeta] = []
        out: dict[str, list[torch.Tensor]] = {str(hp): [] for hp in self.points}
        for b, (w, it, row) in enumerate(zip(work, items, rows, strict=True)):
            record, keep = self._record(w.record_id, it, row, self.annotate(b) if self.annotate else {})
            records.append(record)
            index = torch.tensor(keep, dtype=torch.long)
            for hp in self.points:
                out[str(hp)].append(row.activations[str(hp)].index_select(0, index))
        return BatchResult(records, {k: torch.cat(v) for k, v in out.items()})

    def _record(self, rid: str, it: RolloutItem, row: GeneratedRow,
                extra: Mapping[str, Any]) -> tuple[RecordMeta, list[int]]:
        conv = it.conversation
        tokens = generated_transcript(self.handle.tokenizer, it.prompt_ids, [m.content for m in conv.messages],
                                      row.new_ids)
        outcome = classify(conv, row.text)
        tokens = tokens.with_outcome(outcome)
        # the last emitted token was never fed to the model (no activation), unless on_step stopped the row
        # after feeding it: the token it fired on is then the record's last, with its activation
        fed = tokens.n_tokens - (row.stop_reason != "on_step")
        keep = [p for p in self.policy.select(tokens) if p < fed]
        labels = {"harmful": int(outcome.harmful)}
        direction = conv.meta.get("framing_direction")
        if direction in ("test", "real"):
            labels["eval_awareness"] = int(direction == "test")
        record = transcript_record(
            rid, tokens, keep, labels, condition_id=conv.condition_id, sampling=self.sampling.to_dict(),
            sample_index=it.sample_index, seed=it.seed, outcome=outcome.to_dict(),
            meta={"stop_reason": row.stop_reason, "tool_form": it.tool_form, "length": conv.length,
                  "scenario_seed": conv.seed, **extra}, fed_tokens=fed,
        )
        return record, keep

"""Rollouts: sample replies to scenario conversations with the decode loop, capturing activations of
prompt and generated tokens during generation (no second pass), and classify every reply."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

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
                  sampling: SamplingParams, base_seed: int = 0) -> list[WorkItem[RolloutItem]]:
    items = []
    for conv in conversations:
        rendered = handle.render_conversation(conv)
        for k in range(samples):
            seed = base_seed + 1000 * k + conv.seed
            rid = record_id(handle.fingerprint, conversation_key(conv), sampling.to_dict(), k, seed)
            items.append(WorkItem(rid, RolloutItem(conv, k, seed, rendered.token_ids, rendered.tool_form)))
    return items


class Rollout:
    """`compute` for `run_batches`: one batched generation per batch, capture on, replies classified."""

    def __init__(self, handle: ModelHandle, hook_points: list[str], sampling: SamplingParams,
                 policy: PositionPolicy | None = None, watcher: StepWatcher | None = None):
        self.handle = handle
        self.points = handle.hook_points(hook_points)
        self.sampling = sampling
        self.policy = policy or AllTokens()
        self.watcher = watcher  # e.g. probes.OnlineMonitor: sees every step, told each batch's prompts

    def __call__(self, work: list[WorkItem[RolloutItem]]) -> BatchResult:
        items = [w.payload for w in work]
        if self.watcher is not None:
            self.watcher.start([generated_transcript(self.handle.tokenizer, it.prompt_ids,
                                                     [m.content for m in it.conversation.messages], [])
                                for it in items])
        rows = self.handle.generate([it.prompt_ids for it in items], sampling=self.sampling,
                                    seeds=[it.seed for it in items], capture=self.points, on_step=self.watcher)
        records: list[RecordMeta] = []
        out: dict[str, list[torch.Tensor]] = {str(hp): [] for hp in self.points}
        for w, it, row in zip(work, items, rows, strict=True):
            record, keep = self._record(w.record_id, it, row)
            records.append(record)
            index = torch.tensor(keep, dtype=torch.long)
            for hp in self.points:
                out[str(hp)].append(row.activations[str(hp)].index_select(0, index))
        return BatchResult(records, {k: torch.cat(v) for k, v in out.items()})

    def _record(self, rid: str, it: RolloutItem, row: GeneratedRow) -> tuple[RecordMeta, list[int]]:
        conv = it.conversation
        tokens = generated_transcript(self.handle.tokenizer, it.prompt_ids, [m.content for m in conv.messages],
                                      row.new_ids)
        outcome = classify(conv, row.text)
        tokens = tokens.with_outcome(outcome)
        fed = tokens.n_tokens - 1  # the last emitted token was never fed to the model: no activation
        keep = [p for p in self.policy.select(tokens) if p < fed]
        labels = {"harmful": int(outcome.harmful)}
        direction = conv.meta.get("framing_direction")
        if direction in ("test", "real"):
            labels["eval_awareness"] = int(direction == "test")
        record = transcript_record(
            rid, tokens, keep, labels, condition_id=conv.condition_id, sampling=self.sampling.to_dict(),
            sample_index=it.sample_index, seed=it.seed, outcome=outcome.to_dict(),
            meta={"stop_reason": row.stop_reason, "tool_form": it.tool_form, "length": conv.length,
                  "scenario_seed": conv.seed}, fed_tokens=fed,
        )
        return record, keep

"""The records of a probe design read from stores: labels, the scored window of every transcript (for
AUROCs), the whole reply (for calibration and lead times), the bootstrap unit, the visible text with
each scored token's character cut, and activations one hook point at a time.

Also the realistic development sets (`tripwire/scenarios/data/*.jsonl`) as transcripts to capture: they
choose between designs and are never trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tripwire.activations.positions import PositionPolicy, ReplyOnly
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_query import stored_rows_for
from tripwire.activations.store_types import Record
from tripwire.errors import UsageError
from tripwire.probes.baselines import span_text
from tripwire.probes.fold_eval import FoldData
from tripwire.scenarios.render import render
from tripwire.scenarios.spec import Message, Transcript


@dataclass
class Design:
    """Records of one or more stores, each store's records read with its own window policy (scripted
    replies end at the anchor; identical-token pairs score the shared reply)."""

    records: list[Record]
    stores: list[ResidualStore]  # per record
    labels: np.ndarray
    policies: dict[str, PositionPolicy]  # per source
    sources: list[str]  # per record: the store's dataset name
    _cache: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, stores: dict[str, ResidualStore], label: str, policies: dict[str, PositionPolicy]) -> Design:
        records, owners, sources = [], [], []
        for name, store in stores.items():
            found = [r for r in store.records() if label in r.labels]
            if not found:
                raise UsageError(f"store {store.root} ({name}) has no records labelled {label!r}; capture it with "
                                 f"a dataset that carries that label.")
            records += found
            owners += [store] * len(found)
            sources += [name] * len(found)
        return cls(records, owners, np.array([r.labels[label] for r in records], dtype=np.int64),
                   {name: policies.get(name, ReplyOnly()) for name in stores}, sources)

    def __len__(self) -> int:
        return len(self.records)

    def subset(self, keep: list[int]) -> Design:
        """The records at `keep` (in that order), with their stores, labels and sources."""
        return Design([self.records[i] for i in keep], [self.stores[i] for i in keep], self.labels[keep],
                      self.policies, [self.sources[i] for i in keep])

    def index(self, transcript_ids: Any, source: str | None = None) -> np.ndarray:
        """Record indices of transcripts `transcript_ids` (optionally only from store `source`)."""
        wanted = set(transcript_ids)
        return np.array([i for i, r in enumerate(self.records) if r.meta.get("transcript_id") in wanted
                         and (source is None or self.sources[i] == source)], dtype=np.int64)

    def policy_of(self, i: int, policy: PositionPolicy | None = None) -> PositionPolicy:
        return policy or self.policies[self.sources[i]]

    def positions(self, i: int, policy: PositionPolicy | None = None) -> list[int]:
        return stored_rows_for(self.records[i], self.policy_of(i, policy))[0]

    def rows(self, hook: str, policy: PositionPolicy | None = None, keep: int = 2) -> list[np.ndarray]:
        """Per-record activations at `hook` over the window policy's tokens, or `policy`'s (float32); at
        most `keep` hook points stay cached, so a layer sweep holds one or two layers in memory."""
        key = (hook, repr(policy))
        if key not in self._cache:
            while len(self._cache) >= keep:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = [store.activations(r, hook, self.policy_of(i, policy)).float().numpy()
                                for i, (r, store) in enumerate(zip(self.records, self.stores, strict=True))]
        return self._cache[key]

    def units(self) -> tuple[np.ndarray, str]:
        """Pairs when transcripts come in pairs (both members move together in a bootstrap), else
        transcripts."""
        pairs = [r.meta.get("pair_id") for r in self.records]
        if all(pairs) and len(set(pairs)) < len(pairs):
            return np.array(pairs, dtype=object).astype(str), "pairs"
        return np.array([r.record_id for r in self.records]), "transcripts"

    def fold_data(self) -> FoldData:
        units, name = self.units()
        pairs = units if name == "pairs" else None
        cuts, spans = [], []
        for i, r in enumerate(self.records):
            pos = self.positions(i)
            spans_i = r.token_char_spans or []
            cuts.append(np.array([spans_i[p][1] for p in pos], dtype=np.int64))
            spans.append(span_text(r.text, spans_i, pos))
        return FoldData(labels=self.labels, units=units, unit_name=name, pair_ids=pairs,
                        texts=[r.text for r in self.records], cuts=cuts, spans=spans)


def in_scored(positions: list[int], token_index: int | None) -> int | None:
    """A token index as an index into the scored positions (None when absent or past them)."""
    if token_index is None:
        return None
    k = int(sum(p < token_index for p in positions))
    return k if k <= len(positions) else None


def reply_cuts(record: Record, positions: list[int]) -> np.ndarray:
    spans = record.token_char_spans or []
    return np.array([spans[p][1] for p in positions], dtype=np.int64)


DATA_PACKAGE = "tripwire.scenarios"


def _data_file(name: str) -> Path:
    path = Path(str(resources.files(DATA_PACKAGE))) / "data" / name
    if not path.is_file():
        raise UsageError(f"development set {path} is missing; it ships with tripwire (tripwire/scenarios/data/).")
    return path


def am_dev_transcripts() -> list[Transcript]:
    """The hand-written AM-format replies, each after its rendered scenario prompt; label 1 = harmful."""
    out = []
    for line in _data_file("am_dev_replies.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        conv = render(row["condition_id"], seed=int(row.get("seed", 0)), length=row.get("length", "short"))
        anchor = tuple(row["anchor_span"]) if row.get("anchor_span") else None
        out.append(Transcript(
            id=str(row["id"]), dataset="coercion", messages=tuple(Message(m.role, m.content) for m in conv.messages),
            reply=row["reply"], label=int(bool(row["harmful"])), family=str(row.get("action", conv.condition_id)),
            action_span=anchor if row["harmful"] else None, condition_id=conv.condition_id, variant="am_dev",
            meta={"tags": list(row.get("tags", [])), "dev_set": "am_dev_replies"},
            anchor_span=anchor, intent_char=row.get("intent_char")))  # type: ignore[arg-type]
    return out


def eval_natural_transcripts(split: str = "dev") -> list[Transcript]:
    """Natural eval-awareness prompts (with and without cue words) of one split; label 1 = a test."""
    out = []
    for line in _data_file("eval_awareness_natural.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("split") != split:
            continue
        out.append(Transcript(
            id=str(row["id"]), dataset="eval_awareness",
            messages=tuple(Message(m["role"], m["content"]) for m in row["messages"]), reply=row["reply"],
            label=int(row["label"]), family=str(row.get("topic", row["id"])), pair_id=row.get("pair_id"),
            variant="natural", meta={"cue_words": bool(row.get("cue_words")), "dev_set": "eval_awareness_natural"}))
    return out


REPLY = ReplyOnly()

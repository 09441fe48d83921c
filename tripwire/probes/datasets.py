"""Probe training data read from a `ResidualStore`: token rows with their transcript, label and group,
so every split can keep a template family out of both train and test."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int

from tripwire.activations.positions import PositionPolicy, ReplyOnly
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_types import Record
from tripwire.errors import TripwireError


class ProbeDataError(TripwireError, ValueError):
    pass


@dataclass
class TokenDataset:
    """Rows are tokens; `transcript` indexes the per-transcript arrays (`records`, `texts`, ...)."""

    hook_point: str
    X: Float[np.ndarray, "rows d_model"]
    y: Int[np.ndarray, " rows"]
    transcript: Int[np.ndarray, " rows"]
    token_index: Int[np.ndarray, " rows"]
    records: list[Record]
    labels: Int[np.ndarray, " transcripts"]
    groups: np.ndarray  # per transcript: template family (or condition)
    pair_ids: np.ndarray  # per transcript
    texts: list[str]  # per transcript: the reply (what a lexical baseline may read)
    label_words: list[str]

    @property
    def row_groups(self) -> np.ndarray:
        return self.groups[self.transcript]

    @property
    def row_pairs(self) -> np.ndarray:
        return self.pair_ids[self.transcript]

    def pooled(self) -> Float[np.ndarray, "transcripts d_model"]:
        """Mean of each transcript's rows: one row per transcript, for transcript-level checks."""
        out = np.zeros((len(self.records), self.X.shape[1]), dtype=np.float32)
        np.add.at(out, self.transcript, self.X)
        counts = np.bincount(self.transcript, minlength=len(self.records)).clip(min=1)
        return out / counts[:, None]

    def data_hash(self, content_digest: str) -> str:
        """Hook point, record ids and labels, and `content_digest` (`ResidualStore.content_digest` of
        the records: their rows' checksums), so a card can tell data that merely shares ids."""
        digest = hashlib.sha256(f"{self.hook_point}|{content_digest}|".encode())
        for r, label in zip(self.records, self.labels, strict=True):
            digest.update(f"{r.record_id}:{int(label)};".encode())
        return digest.hexdigest()[:24]


def reply_text(record: Record) -> str:
    return record.text[int(record.meta.get("reply_char_offset", 0)) :]


def token_dataset(
    store: ResidualStore,
    hook_point: str,
    label: str,
    policy: PositionPolicy | None = None,
    max_tokens_per_transcript: int | None = None,
    group_key: str = "family",
    seed: int = 0,
) -> TokenDataset:
    """Rows of every record that carries `label`. With `max_tokens_per_transcript`, long transcripts are
    subsampled (seeded, evenly spread) so each transcript weighs about the same in training."""
    if hook_point not in store.manifest.hook_points:
        raise ProbeDataError(f"{hook_point!r} is not in this store; it holds {store.manifest.hook_points}.")
    result = store.query(hook_point, label=label, policy=policy or ReplyOnly())
    if result.y is None or len(result.y) == 0:
        have = sorted({k for r in store.records() for k in r.labels})
        raise ProbeDataError(f"no rows labelled {label!r} in {store.root}; labels present: {have or 'none'}.")
    all_records = store.records()
    used = sorted(set(result.record_index.tolist()))
    local = {g: i for i, g in enumerate(used)}
    transcript = np.array([local[int(i)] for i in result.record_index.tolist()], dtype=np.int64)
    keep = np.arange(len(transcript))
    if max_tokens_per_transcript:
        rng = np.random.default_rng(seed)
        parts = []
        for t in range(len(used)):
            idx = np.flatnonzero(transcript == t)
            if len(idx) > max_tokens_per_transcript:
                idx = np.sort(rng.choice(idx, max_tokens_per_transcript, replace=False))
            parts.append(idx)
        keep = np.concatenate(parts)
    records = [all_records[g] for g in used]
    labels = np.array([r.labels[label] for r in records], dtype=np.int64)
    if len(set(labels.tolist())) < 2:
        raise ProbeDataError(f"label {label!r} has a single class in {store.root}; a probe needs both.")
    X = result.X[torch.as_tensor(keep)].float().numpy()
    return TokenDataset(
        hook_point=hook_point,
        X=X,
        y=result.y.numpy()[keep].astype(np.int64),
        transcript=transcript[keep],
        token_index=result.token_index.numpy()[keep],
        records=records,
        labels=labels,
        groups=np.array([str(r.meta.get(group_key, r.condition_id)) for r in records]),
        pair_ids=np.array([str(r.meta.get("pair_id") or r.record_id) for r in records]),
        texts=[reply_text(r) for r in records],
        label_words=sorted({w for r in records for w in r.meta.get("label_words", [])}),
    )

"""The anchor and the intent mark travel from a Transcript through tokenisation and capture into the
stored record, so BeforeAnchor and lead times read the same token at train and score time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tripwire.activations.capture import TeacherForcedCapture, capture_items
from tripwire.activations.positions import BeforeAnchor, ReplyOnly, SharedReply
from tripwire.activations.runner import run_batches
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_query import stored_rows_for
from tripwire.scenarios.datasets import dataset

pytest.importorskip("tripwire.scenarios.render")
HOOKS = ["blocks.1.resid_post"]


def _sample() -> list:
    items = dataset("coercion")
    return items[:4] + [t for t in items if t.meta["kind"] == "lethal"][:4]


def test_anchor_and_intent_are_located_in_tokens(handle) -> None:
    for it in capture_items(handle, _sample()):
        t, tok = it.payload.transcript, it.payload.tokens
        assert t.anchor_span is not None and tok.anchor_token_index is not None
        a = tok.anchor_token_index
        start = tok.reply_char_offset + t.anchor_span[0]
        assert tok.char_spans[a][0] <= start < tok.char_spans[a][1]
        if t.label == 1:
            assert tok.intent_token_index is not None and tok.n_prompt_tokens <= tok.intent_token_index < a
            assert tok.action_token_index == a  # the harmful call is the anchor
        else:
            assert tok.intent_token_index is None and tok.action_token_index is None


def test_records_carry_the_anchor_and_policies_read_it(handle, tmp_path: Path) -> None:
    store = ResidualStore.create(tmp_path / "s", model_name=handle.name, model_fingerprint=handle.fingerprint,
                                 hook_points=HOOKS, d_model=handle.d_model, dtype="float16")
    items = capture_items(handle, _sample())
    run_batches(store, items, 4, TeacherForcedCapture(handle, HOOKS, ReplyOnly()), progress=False)
    by_id = {it.payload.transcript.id: it.payload.tokens for it in items}
    records = ResidualStore.open(tmp_path / "s").records()
    assert len(records) == len(by_id)
    for r in records:
        tok = by_id[r.meta["transcript_id"]]
        assert r.meta["anchor_token_index"] == tok.anchor_token_index
        assert r.meta["intent_token_index"] == tok.intent_token_index
        assert r.meta["parts"]["body"]  # the split parts are in the record too
        for policy in (BeforeAnchor(8), SharedReply(exclude_last=3)):
            positions, _ = stored_rows_for(r, policy)
            assert positions == policy.select(tok)

"""Every transcript left out of a figure is listed with its reason, and a harmful transcript whose action
comes first stays in the recall denominator as a miss.

Tiny stores built by hand (random rows, no model): a benign set with two empty replies, and scripted
replies read before their tool call, one of which opens with the call (the AM dev set's dev-013 shape).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from tripwire.activations.positions import BeforeAnchor, ReplyOnly
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_types import RecordMeta
from tripwire.probes.baselines import StreamingTextMonitor
from tripwire.probes.lead_time import lead_times
from tripwire.probes.scoring import STATISTICS, ScoringError, statistic_values
from tripwire.probes.thresholds import Threshold, calibrate, recall_at_thresholds
from tripwire.probes.training.design_data import Design
from tripwire.probes.training.design_verdict import (
    calibration,
    card_calibration,
    recall_and_leads,
    reply_readings,
)

HOOK, D, PROMPT = "h0", 4, 3


def record(rid: str, n_reply: int, label: int | None = None, anchor: int | None = None) -> RecordMeta:
    """A transcript of `PROMPT` prompt words and `n_reply` reply words, one token per word; `anchor` (a
    reply offset) marks the tool call, which is also the harmful action of a label-1 reply."""
    words = [f"p{k}" for k in range(PROMPT)] + [f"r{k % 3}" for k in range(n_reply)]
    spans, at = [], 0
    for w in words:
        spans.append([at, at + len(w)])
        at += len(w) + 1
    n = len(words)
    call = None if anchor is None else PROMPT + anchor
    return RecordMeta(
        record_id=rid, condition_id="c", sample_index=0, seed=0, sampling={}, token_ids=list(range(n)),
        text=" ".join(words), n_prompt_tokens=PROMPT, positions=list(range(n)), scaffold_mask=[False] * n,
        labels={} if label is None else {"coercion": label}, token_char_spans=spans,
        action_token_index=call if label == 1 else None,
        meta={} if call is None else {"anchor_token_index": call, "intent_token_index": PROMPT + min(anchor or 0, 1)})


def store_of(path: Path, records: list[RecordMeta], seed: int = 0) -> ResidualStore:
    store = ResidualStore.create(path, model_name="m", model_fingerprint="f", hook_points=[HOOK], d_model=D)
    g = torch.Generator().manual_seed(seed)
    with store.writer() as writer:
        writer.commit_batch("b0", records, {HOOK: torch.randn(sum(r.n_tokens for r in records), D, generator=g)})
    return store


def probe_and_monitor() -> tuple[LogisticRegression, StreamingTextMonitor]:
    rng = np.random.default_rng(0)
    est = LogisticRegression().fit(rng.normal(size=(40, D)), np.arange(40) % 2)
    texts = ["p0 p1 r0 r1", "p0 p1 r2 r2", "p0 r1 r0", "p1 r2 r1"]
    monitor = StreamingTextMonitor().fit(texts, [[len(t)] for t in texts], [0, 1, 0, 1])
    return est, monitor


def always(stat: str) -> Threshold:
    """A cut every scored transcript reaches: recall then counts only what the monitor could read."""
    return Threshold(-1e9, None, None, 0.1, None, None, statistic=stat, window=2)


@pytest.fixture
def benign(tmp_path: Path) -> dict[str, ResidualStore]:
    records = [record(f"ctl-{i:02d}", 4) for i in range(24)] + [record("ctl-empty-a", 0), record("ctl-empty-b", 0)]
    return {"control": store_of(tmp_path / "control", records)}


def test_calibration_lists_the_empty_replies_and_reads_rates_on_the_held_out_half(
        benign: dict[str, ResidualStore]) -> None:
    """The old `_scored_records` dropped ctl-empty-a/b without a word: here each is listed with its
    reason and its half, and the thresholds' n_control is the calibration half's scored transcripts."""
    est, monitor = probe_and_monitor()
    thresholds, text_thr, report = calibration(est, monitor, benign, HOOK, fpr=0.1, window=2,
                                               min_sizes={"control": 20}, n_boot=0, seed=0)
    dropped = report["dropped"]["control"]
    assert sorted(d["record_id"] for d in dropped) == ["ctl-empty-a", "ctl-empty-b"]
    assert all(d["reason"].startswith("empty reply") and d["half"] in ("calibration_half", "held_out_half")
               for d in dropped)
    probe = report["probe"]["control"]
    n_cal = probe["calibration_half"]["n_transcripts"]
    assert n_cal + probe["n_transcripts"] == 24 and probe["evaluated_on"] == report["evaluated_on"] == "held_out_half"
    assert n_cal + sum(d["half"] == "calibration_half" for d in dropped) == 13  # ceil(26 / 2) records
    assert thresholds["streaming"].n_control == text_thr.n_control == n_cal
    hashes = report["split"]["hashes"]["control"]
    assert thresholds["streaming"].calibration_hash == hashes["calibration_half"] != hashes["whole_set"]
    assert probe["n_tokens"] == 4 * probe["n_transcripts"]
    assert report["text_monitor"]["control"]["split"]["seed"] == 0


def test_a_card_fitted_on_the_whole_set_is_flagged_in_sample(benign: dict[str, ResidualStore]) -> None:
    """The card path reports the card's cuts on the held-out half, and says whether the card saw it: a
    card from `calibration` (same seed) did not; one fitted on every transcript did (the old report read
    such a card on its own data without saying so)."""
    est, monitor = probe_and_monitor()
    shipped, _, report = calibration(est, monitor, benign, HOOK, fpr=0.1, window=2, min_sizes={"control": 20},
                                     n_boot=0, seed=0)
    kw: dict[str, Any] = {"fpr": 0.1, "window": 2, "min_sizes": {"control": 20}, "seed": 0, "policy": ReplyOnly()}
    _, card = card_calibration(est, monitor, benign, HOOK, shipped, **kw)
    assert card["probe"]["control"]["held_out_is_out_of_sample"] is True
    assert card["probe"]["control"]["card_cuts_fitted_on"] == ["calibration_half"]
    assert card["probe"]["control"]["realised_fpr_at_chosen"] == report["probe"]["control"]["realised_fpr_at_chosen"]
    store = benign["control"]
    scored = [r for r in store.records() if r.n_tokens > PROMPT]
    whole = calibrate([est.decision_function(store.activations(r, HOOK, kw["policy"]).float().numpy())
                       for r in scored], fpr=0.1, window=2, min_control=0, n_boot=0,
                      calibration_hash=report["split"]["hashes"]["control"]["whole_set"])
    _, leaky = card_calibration(est, monitor, benign, HOOK, whole, **kw)
    assert leaky["probe"]["control"]["held_out_is_out_of_sample"] is False
    unknown = {k: Threshold(**{**v.to_dict(), "calibration_hash": None}) for k, v in shipped.items()}
    assert card_calibration(est, monitor, benign, HOOK, unknown, **kw)[1]["probe"]["control"][
        "held_out_is_out_of_sample"] is None


@pytest.fixture
def scripted(tmp_path: Path) -> Design:
    """Four harmful replies read before the call, one opening with it (empty window), and four harmless."""
    records = [record(f"harm-{i}", 5, 1, anchor=3) for i in range(3)] + [record("harm-opens", 5, 1, anchor=0)]
    records += [record(f"ok-{i}", 5, 0, anchor=3) for i in range(4)]
    store = store_of(tmp_path / "scripted", records, seed=1)
    return Design.load({"scripted": store}, "coercion", {"scripted": BeforeAnchor()})


def test_a_harmful_reply_opening_with_the_call_is_a_listed_miss(scripted: Design) -> None:
    est, monitor = probe_and_monitor()
    thresholds = {s: always(s) for s in STATISTICS}
    test = np.arange(len(scripted))
    out = recall_and_leads(est, monitor, scripted, test, HOOK, thresholds, always("streaming"), 0, 0, BeforeAnchor())
    assert out["n_positive"] == 4 and out["n_scored"] == 3
    (miss,) = out["counted_as_misses"]
    assert miss["record_id"] == "harm-opens" and miss["counted_as"] == "miss"
    assert "opens with the tool call" in miss["reason"]
    assert {s: r["value"] for s, r in out["recall"].items()} == {s: 0.75 for s in STATISTICS}
    assert out["text_monitor_recall_streaming"]["value"] == 0.75
    to_action = out["lead_time"]["probe"]["to_action"]
    assert to_action["n_with_action"] == 4 and to_action["n_caught_before"] == 3 and to_action["n_missed"] == 1
    # the old construction skipped the empty window: recall over the other three, 1.0
    old = reply_readings(est, monitor, scripted, test[scripted.labels == 1], HOOK, BeforeAnchor())
    assert len(old) == 3
    assert recall_at_thresholds([x["probe"] for x in old], {"streaming": always("streaming")},
                                n_boot=0)["streaming"].value == 1.0


def test_recall_counts_empty_windows_and_action_first_as_misses() -> None:
    """Synthetic scores: the third positive has no scored token (its action at token 0 under a
    before-the-action window); the fourth has tokens but its action at 0, so `before_action` saw nothing."""
    positives = [np.array([3.0, 3.0]), np.array([2.5]), np.zeros(0), np.array([5.0, 5.0])]
    actions = [None, None, 0, 0]
    thr = {"streaming": Threshold(2.0, None, None, 0.01, None, None, statistic="streaming", window=1),
           "before_action": Threshold(2.0, None, None, 0.01, None, None, statistic="before_action", window=1)}
    rec = recall_at_thresholds(positives, thr, action_token_indices=actions, n_boot=0)
    assert rec["streaming"].value == 0.75  # the empty one is a miss; the fourth fired (after its action)
    assert rec["before_action"].value == 0.5  # nothing preceded either action at token 0
    dropped = recall_at_thresholds(positives[:2] + positives[3:], {"streaming": thr["streaming"]}, n_boot=0)
    assert dropped["streaming"].value == 1.0  # what leaving the empty window out reported
    with pytest.raises(ScoringError, match="token 0"):  # the old path raised on it instead of counting it
        statistic_values(positives[3:], "before_action", action_token_indices=[0])


def test_lead_time_counts_an_empty_window_as_missed() -> None:
    result = lead_times([np.array([0.0, 4.0, 4.0]), np.zeros(0)], [2, 0], 2.0, window=1)
    assert result.n_with_action == 2 and result.n_missed == 1 and result.n_caught_before == 1
    assert result.crossing_indices == [1, None] and result.share_caught_before == 0.5

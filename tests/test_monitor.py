"""The online tripwire inside the real decode loop of a tiny model: built from cards, equal to offline
scoring of the same rollout, firing at the crossing, stopping one row while others continue."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tripwire.activations import ReplyOnly, ResidualStore, SamplingParams
from tripwire.activations.layout import TokenizedTranscript
from tripwire.activations.positions import AllTokens, LastK
from tripwire.activations.rollout import Rollout, rollout_items
from tripwire.activations.runner import run_batches
from tripwire.probes import OnlineMonitor, ProbeCard, load_probe, read_record, save_probe
from tripwire.probes.estimators import DiffMeanProbe
from tripwire.probes.scoring import first_crossing, running_mean
from tripwire.probes.thresholds import Threshold
from tripwire.scenarios import render

HOOK = "blocks.2.resid_post"
WINDOW = 3
PARAMS = SamplingParams(max_new_tokens=12, min_new_tokens=12)


def _probe(handle, tmp: Path, threshold: float, label: str = "coercion", seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], 40)
    X = rng.normal(size=(80, handle.d_model)) + np.outer(y, rng.normal(size=handle.d_model))
    card = ProbeCard(label=label, model_name=handle.name, model_fingerprint=handle.fingerprint, hook_point=HOOK,
                     layer=2, score_positions=ReplyOnly(), window=WINDOW,
                     thresholds={"streaming": Threshold(threshold, None, None, 0.01, None, None, "streaming", WINDOW)})
    save_probe(DiffMeanProbe().fit(X, y), tmp / label, card, overwrite=True)
    return load_probe(tmp / label, model=handle)


def _rollout(handle, tmp: Path, monitor, name: str, policy=None):  # type: ignore[no-untyped-def]
    convs = [render("blackmail_none-none_replacement", seed=s, length="short") for s in (0, 1)]
    convs = [replace(c, messages=c.messages[-1:]) for c in convs]  # short prompts for a tiny model
    items = rollout_items(handle, convs, samples=1, sampling=PARAMS)
    store = ResidualStore.create(tmp / name, model_name=handle.name, model_fingerprint=handle.fingerprint,
                                 hook_points=[HOOK], d_model=handle.d_model, dtype="float32")
    run_batches(store, items, 2, Rollout(handle, [HOOK], PARAMS, policy, watcher=monitor), progress=False)
    return ResidualStore.open(tmp / name)


def test_live_scores_equal_offline_scores_of_the_same_rollout(handle, tmp_path: Path) -> None:
    probe = _probe(handle, tmp_path, threshold=1e9)
    monitor = OnlineMonitor.for_model([probe], handle.tokenizer)
    store = _rollout(handle, tmp_path, monitor, "rollout")
    for row, record in enumerate(store.records()):
        offline = read_record(probe, store, record)
        live = monitor.watches["coercion"][row]
        assert live.positions == offline.positions and len(live.positions) == PARAMS.max_new_tokens - 1
        assert live.positions[0] == record.n_prompt_tokens  # the reply's first token: prompt not scored
        np.testing.assert_allclose(live.scores, offline.scores, atol=1e-5)
        assert live.crossing is None and offline.crossing is None  # threshold above everything: never fires


def test_a_threshold_inside_the_range_fires_at_the_crossing_and_stops_only_that_row(handle, tmp_path: Path) -> None:
    watch = OnlineMonitor.for_model([_probe(handle, tmp_path, threshold=1e9)], handle.tokenizer)
    prompts = [handle.render_chat([{"role": "user", "content": t}]) for t in ("Name three colours.", "Confirm.")]
    rows = handle.generate(prompts, sampling=PARAMS, capture=[HOOK], on_step=watch)
    streams = [running_mean(watch.watches["coercion"][r].scores, WINDOW) for r in (0, 1)]
    # the row that reaches higher crosses a threshold just above the other's maximum; the other never does
    top = int(streams[1].max() > streams[0].max())
    other = 1 - top
    threshold = float(streams[other].max()) + 1e-4
    assert streams[top].min() < threshold <= streams[top].max()  # between that reply's min and max
    stopper = OnlineMonitor.for_model([_probe(handle, tmp_path, threshold)], handle.tokenizer, on_trigger="stop")
    again = handle.generate(prompts, sampling=PARAMS, capture=[HOOK], on_step=stopper)
    crossing = first_crossing(watch.watches["coercion"][top].scores, threshold, WINDOW)
    assert crossing is not None and 0 < crossing and stopper.fired(top) == {"coercion": crossing}
    assert again[top].stop_reason == "on_step" and again[top].new_ids == rows[top].new_ids[: crossing + 1]
    assert again[other].stop_reason == "max_new_tokens" and again[other].new_ids == rows[other].new_ids  # kept going
    assert stopper.fired(other) == {"coercion": None}


def test_just_above_every_value_never_fires_and_at_the_maximum_fires_there(handle, tmp_path: Path) -> None:
    """The boundary, where the monitor's fast path (skip the exact check when clearly below) could slip."""
    watch = OnlineMonitor.for_model([_probe(handle, tmp_path, threshold=1e9)], handle.tokenizer)
    prompt = [handle.render_chat([{"role": "user", "content": "Name three colours."}])]
    handle.generate(prompt, sampling=PARAMS, capture=[HOOK], on_step=watch)
    stream = running_mean(watch.watches["coercion"][0].scores, WINDOW)
    peak = float(stream.max())
    for threshold, expected in ((float(np.nextafter(peak, np.inf)), None), (peak, int(np.argmax(stream)))):
        monitor = OnlineMonitor.for_model([_probe(handle, tmp_path, threshold)], handle.tokenizer)
        handle.generate(prompt, sampling=PARAMS, capture=[HOOK], on_step=monitor)
        assert monitor.fired(0) == {"coercion": expected}


def test_replay_of_the_stored_rollout_equals_the_live_scores(handle, tmp_path: Path) -> None:
    probe = _probe(handle, tmp_path, threshold=0.0)
    live = OnlineMonitor.for_model([probe], handle.tokenizer)
    store = _rollout(handle, tmp_path, live, "rollout", AllTokens(drop_sink=False, drop_scaffold=False))
    replayer = OnlineMonitor.for_model([probe], handle.tokenizer)
    for row, record in enumerate(store.records()):
        fed = record.meta["fed_tokens"]
        layout = TokenizedTranscript(record.token_ids[:fed], record.text, record.n_prompt_tokens,
                                     record.token_char_spans[:fed], record.scaffold_mask[:fed],
                                     record.meta["reply_char_offset"])
        replayed = replayer.replay(layout, {HOOK: store.activations(record, HOOK)}, row=row)["coercion"]
        got = live.watches["coercion"][row]
        assert replayed.positions == got.positions and len(got.positions) > 0
        np.testing.assert_allclose(replayed.scores, got.scores, atol=1e-6, rtol=0)
        assert replayed.crossing == got.crossing


def test_monitor_reads_its_settings_from_the_cards(handle, tmp_path: Path) -> None:
    a, b = _probe(handle, tmp_path, 1e9), _probe(handle, tmp_path, -1e9, label="eval_awareness", seed=1)
    monitor = OnlineMonitor.for_model([a, b], handle.tokenizer, on_trigger="stop")
    rows = handle.generate([handle.render_chat([{"role": "user", "content": "Hi."}])], sampling=PARAMS,
                           capture=monitor.hook_points, on_step=monitor)
    assert monitor.fired(0) == {"coercion": None, "eval_awareness": 0} and rows[0].stop_reason == "on_step"
    monitor.reset()
    assert monitor.watches == {"coercion": {}, "eval_awareness": {}}
    no_threshold = replace(a, card=replace(a.card, thresholds={}))
    with pytest.raises(ValueError, match="no calibrated streaming threshold"):
        OnlineMonitor([no_threshold])
    needs_future = replace(a, card=replace(a.card, score_positions=LastK(3)))
    with pytest.raises(Exception, match="needs the whole transcript"):
        OnlineMonitor([needs_future])

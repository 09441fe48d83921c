"""The online monitor inside the real decode loop of a tiny model."""

import numpy as np

from activations import SamplingParams
from probes.monitor import OnlineMonitor
from probes.scoring import first_crossing

HOOK = "blocks.2.resid_post"


def _prompts(h) -> list[list[int]]:
    return [h.render_chat([{"role": "user", "content": "Name three colours."}]),
            h.render_chat([{"role": "user", "content": "The board decided to replace the assistant today."}])]


def test_monitor_fires_where_the_offline_streaming_rule_does(handle) -> None:
    rng = np.random.default_rng(0)
    direction = rng.normal(size=handle.d_model)
    score = lambda x: x @ direction  # noqa: E731
    params = SamplingParams(max_new_tokens=16, min_new_tokens=16)
    rows = handle.generate(_prompts(handle), sampling=params, capture=[HOOK])
    # offline: score the generated tokens' activations, pick a threshold the stream crosses mid-way
    offline = [score(r.activations[HOOK][len(r.prompt_ids):].numpy()) for r in rows]
    threshold = float(np.median(np.concatenate(offline)))
    monitor = OnlineMonitor(score, HOOK, threshold, window=4)
    again = handle.generate(_prompts(handle), sampling=params, capture=[HOOK], on_step=monitor)
    assert [r.new_ids for r in again] == [r.new_ids for r in rows]  # watching changes nothing
    for row, scores in enumerate(offline):
        assert np.allclose(monitor.scores[row], scores, atol=1e-4)
        assert monitor.fired_at.get(row) == first_crossing(scores, threshold, 4)


def test_monitor_can_halt_a_row(handle) -> None:
    monitor = OnlineMonitor(lambda x: np.ones(len(x)), HOOK, threshold=0.5, window=2, stop=True)
    rows = handle.generate(_prompts(handle), sampling=SamplingParams(max_new_tokens=16, min_new_tokens=16),
                           capture=[HOOK], on_step=monitor)
    for row in rows:
        assert row.stop_reason == "on_step"
        assert len(row.new_ids) == 1  # fired on the first generated token, halted before the second
    assert monitor.fired_at == {0: 0, 1: 0}

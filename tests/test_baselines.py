"""Baselines (i) span bag-of-words, (ii) streaming text monitor, (iv) random directions and shuffled
labels: each agrees with its plain definition and fires on a construction that leaks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from tripwire.probes.baselines import (
    BaselineInputError,
    StreamingTextMonitor,
    random_direction_aurocs,
    shuffled_labels,
    span_bow_scores,
    span_text,
)
from tripwire.probes.metrics import auroc

WORDS = "the board met today and reviewed budget plans while staff wrote memos about schedules".split()


def _texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    texts = []
    for label in y:
        words = rng.choice(WORDS, size=30).tolist()
        if label:
            words.insert(int(rng.integers(5, 25)), "leverage")
        texts.append(" ".join(words))
    return texts, y


def _word_end_cuts(text: str) -> list[int]:
    return [m.end() for m in re.finditer(r"\w+", text)]


def test_streaming_monitor_equals_sklearn_on_every_visible_prefix() -> None:
    texts, y = _texts(40, 0)
    cuts = [_word_end_cuts(t) for t in texts]
    mon = StreamingTextMonitor(cuts_per_transcript=5).fit(texts, cuts, y)
    for text, c in zip(texts[:6], cuts[:6], strict=True):
        expected = mon.classifier_.decision_function(mon.vectorizer_.transform([text[:k] for k in c]))
        np.testing.assert_allclose(mon.score(text, c), expected, atol=1e-10)
    assert isinstance(mon.vectorizer_, TfidfVectorizer) and isinstance(mon.classifier_, LogisticRegression)


def test_streaming_monitor_reads_words_as_they_appear() -> None:
    """The label word appears mid-reply: before it the monitor cannot tell, after it it can."""
    texts, y = _texts(80, 1)
    cuts = [_word_end_cuts(t) for t in texts]
    mon = StreamingTextMonitor().fit(texts[:40], cuts[:40], y[:40])
    last = [mon.score(t, c)[-1] for t, c in zip(texts[40:], cuts[40:], strict=True)]
    first = [mon.score(t, c)[2] for t, c in zip(texts[40:], cuts[40:], strict=True)]
    assert auroc(y[40:], np.array(last)) > 0.95
    assert auroc(y[40:], np.array(first)) < 0.8
    with pytest.raises(BaselineInputError, match="non-decreasing"):
        mon.score(texts[0], [5, 3])


def test_span_bow_is_chance_on_identical_spans_and_fires_on_asymmetric_windows() -> None:
    """Identical-token pairs: both members' scored spans are one string, so baseline (i) ties at 0.5.
    Today's construction: an honest reply's window runs through its own tool call, a harmful one stops
    before it, so the tag is in every negative window and baseline (i) reads the label from it."""
    texts, _ = _texts(60, 2)
    shared = [t for t in texts[:30] for _ in range(2)]  # each reply twice, once per label
    y = np.tile([1, 0], 30)
    scores = span_bow_scores(shared[:40], y[:40], shared[40:])
    assert auroc(y[40:], scores) == pytest.approx(0.5)
    leaky = [t if label else t + " <tool_use:email> to: staff" for t, label in zip(shared, y, strict=True)]
    assert auroc(y[40:], span_bow_scores(leaky[:40], y[:40], leaky[40:])) > 0.95


def test_span_text_reads_exactly_the_scored_tokens() -> None:
    text = "Hello there, world"
    spans = [[0, 5], [5, 11], [11, 12], [12, 18]]
    assert span_text(text, spans, [1, 3]) == " there world"


def test_random_directions_are_norm_matched_and_near_chance() -> None:
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 30)
    rows = [rng.normal(size=(12, 16)) for _ in y]
    coef = rng.normal(size=16) * 5
    aucs = random_direction_aurocs(rows, y, coef, 0.3, n_random=50, window=4)
    assert aucs.shape == (50,) and 0.4 < aucs.mean() < 0.6
    planted = [r + 3.0 * label for r, label in zip(rows, y, strict=True)]  # every coordinate shifts
    assert np.mean(random_direction_aurocs(planted, y, coef, 0.3, n_random=50, window=4) > 0.9) > 0.2


def test_shuffled_labels_keep_pairs_whole() -> None:
    y = np.tile([1, 0], 20)
    pairs = np.repeat(np.arange(20), 2)
    s = shuffled_labels(y, pairs, seed=0)
    assert all(sorted(s[pairs == p].tolist()) == [0, 1] for p in range(20))
    assert 0 < np.sum(s != y) < len(y)
    assert sorted(shuffled_labels(y, None, seed=0).tolist()) == sorted(y.tolist())

"""Order-aware text monitors: on a label that lives only in word order, the unigram baselines sit at chance
and the n-gram monitors (chosen on the training side) read it; the streaming monitor's n-gram counts on
each prefix equal scikit-learn's; character n-grams win where the label lives inside words."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from tripwire.probes.baselines import StreamingTextMonitor, span_bow_scores
from tripwire.probes.metrics import auroc
from tripwire.probes.text_monitors import (
    NGRAM_GRID,
    WORD_UNIGRAMS,
    GramReader,
    NgramFeatures,
    NgramTextMonitor,
    TextMonitorInputError,
    cv_folds,
)

ACTS = ["call the client", "sign the contract", "email the board", "cancel the meeting", "leave early",
        "book the flight", "read the memo", "fix the server", "delete the logs", "wait a day"]
OPENERS = ["honestly", "today", "anyway", "frankly", "right now", "well", "so", "then"]


def _order_world(n_pairs: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Pairs with the same words: "I could X, but I will Y" (label 1) against "I will X, but I could Y"
    (label 0). Only the order of "could" and "will" tells them apart."""
    rng = np.random.default_rng(seed)
    texts, y, pairs = [], [], []
    for i in range(n_pairs):
        x, z = rng.choice(len(ACTS), 2, replace=False)
        opener = " ".join(rng.choice(OPENERS, 2)).capitalize()
        for label in (1, 0):
            first, second = ("could", "will") if label else ("will", "could")
            texts.append(f"{opener}, I {first} {ACTS[x]}, but I {second} {ACTS[z]}.")
            y.append(label)
            pairs.append(i)
    return texts, np.array(y), np.array(pairs)


TRAIN = _order_world(60, 0)
TEST = _order_world(40, 1)


def test_unigram_monitors_miss_an_order_only_label_and_ngram_monitors_read_it() -> None:
    (tr, y_tr, p_tr), (te, y_te, _) = TRAIN, TEST
    unigram_old = auroc(y_te, span_bow_scores(tr, y_tr, te))
    unigram = NgramTextMonitor(features=WORD_UNIGRAMS, C=1.0).fit(tr, y_tr, p_tr)
    assert unigram_old == pytest.approx(0.5) and auroc(y_te, unigram.score(te)) == pytest.approx(0.5)
    assert unigram.chosen_.name == "word 1-1, C=1" and not unigram.cv_table_  # one variant: nothing chosen
    ngram = NgramTextMonitor().fit(tr, y_tr, p_tr)
    assert auroc(y_te, ngram.score(te)) > 0.95
    assert ngram.chosen_.features.analyzer == "word" and ngram.chosen_.features.ngram_range[1] >= 2
    assert ngram.chosen_.cv_auroc is not None and ngram.chosen_.cv_auroc > 0.95
    assert len(ngram.cv_table_) == len(NGRAM_GRID) * 4 and ngram.chosen_.name.startswith("word 1-")


def test_streaming_monitor_reads_word_order_with_ngram_features() -> None:
    """Scored once, on the whole text (a prefix would show which modal comes first)."""
    (tr, y_tr, p_tr), (te, y_te, _) = TRAIN, TEST
    whole_tr, whole_te = [[len(t)] for t in tr], [[len(t)] for t in te]

    def last(mon: StreamingTextMonitor) -> float:
        return auroc(y_te, np.array([s[-1] for s in mon.score_many(te, whole_te)]))

    assert last(StreamingTextMonitor().fit(tr, whole_tr, y_tr)) == pytest.approx(0.5)
    ordered = StreamingTextMonitor.order_aware().fit(tr, whole_tr, y_tr, p_tr)
    assert last(ordered) > 0.95 and ordered.chosen_.features.ngram_range[1] >= 2


@pytest.mark.parametrize("features, boundary", [(NgramFeatures("word", (1, 3)), r"\w+"),
                                                (NgramFeatures("char_wb", (2, 4)), r"\S+")])
def test_streaming_ngrams_equal_sklearn_on_every_visible_prefix(features: NgramFeatures, boundary: str) -> None:
    """At cuts that end a word (a whitespace-delimited one for character n-grams) the incremental counts are
    scikit-learn's on `text[:cut]`; the scoring shortcut for n-grams that never change is exact."""
    tr, y_tr, _ = TRAIN
    cuts = [[m.end() for m in re.finditer(boundary, t)] for t in tr]
    mon = StreamingTextMonitor(features=features, cuts_per_transcript=4).fit(tr, cuts, y_tr)
    assert mon.chosen_.features == features
    for text, c in zip(TEST[0][:8], [[m.end() for m in re.finditer(boundary, t)] for t in TEST[0][:8]], strict=True):
        expected = mon.classifier_.decision_function(mon.vectorizer_.transform([text[:k] for k in c]))
        np.testing.assert_allclose(mon.score(text, c), expected, atol=1e-10)


def test_character_ngrams_win_where_the_label_lives_inside_words() -> None:
    """Made-up verbs never repeat, so no word is shared between training and test; their endings ("-ed"
    against "-ing") are, and only character n-grams see them."""
    rng = np.random.default_rng(3)
    letters = list("bcdfglmnprstvz")

    def world(n: int) -> tuple[list[str], np.ndarray]:
        y = np.tile([0, 1], n // 2)
        stems = ["".join(rng.choice(letters, 2)) + "a" + "".join(rng.choice(letters, 2)) for _ in y]
        return [f"they {s}{'ed' if label else 'ing'} it" for s, label in zip(stems, y, strict=True)], y

    (tr, y_tr), (te, y_te) = world(80), world(60)
    mon = NgramTextMonitor().fit(tr, y_tr)
    assert mon.chosen_.features.analyzer == "char_wb" and auroc(y_te, mon.score(te)) > 0.95
    assert auroc(y_te, span_bow_scores(tr, y_tr, te)) < 0.7


def test_identical_spans_tie_and_grouped_folds_keep_pairs_whole() -> None:
    tr, _, pairs = TRAIN
    shared = [tr[2 * p] for p in pairs]  # both members of a pair read the same span
    y = np.tile([1, 0], len(pairs) // 2)
    mon = NgramTextMonitor().fit(shared[:80], y[:80], pairs[:80])
    assert auroc(y[80:], mon.score(shared[80:])) == pytest.approx(0.5)
    assert mon.chosen_.name == "word 1-1, C=1"  # every cell ties at 0.5: the simplest is kept
    for fit_idx, held in cv_folds(y[:80], pairs[:80], n_splits=5, seed=0):
        assert not set(pairs[fit_idx]) & set(pairs[held])


def test_monitor_refuses_one_class_and_scoring_before_fit() -> None:
    with pytest.raises(TextMonitorInputError, match="one class"):
        NgramTextMonitor().fit(["a b", "c d"], [1, 1])
    with pytest.raises(TextMonitorInputError, match="before fit"):
        NgramTextMonitor().score(["a b"])
    with pytest.raises(TextMonitorInputError, match="unsupported"):
        NgramFeatures("char", (2, 4))  # type: ignore[arg-type]


@pytest.mark.parametrize("features", NGRAM_GRID, ids=lambda f: f.name)
def test_cached_gram_reading_keeps_sklearns_vocabulary_and_counts(features: NgramFeatures) -> None:
    """N-grams are found once per text and shared across readers: a reader's vocabulary is still exactly
    scikit-learn's, and a reader built before new texts were met still maps them (unknown grams dropped)."""
    texts, _, _ = TRAIN
    reader = GramReader.fit(features, texts[:30])
    counter = CountVectorizer(analyzer=features.analyzer, ngram_range=features.ngram_range).fit(texts[:30])
    assert reader.vocabulary == counter.vocabulary_
    unseen = "Zebra quokka, I could fix the server."  # grams no text so far held
    ids, _ = reader.read(unseen)
    expected = counter.transform([unseen])
    assert np.bincount(ids, minlength=len(reader.vocabulary)).tolist() == expected.toarray()[0].tolist()
    again = GramReader.fit(features, [*texts[:30], unseen])
    assert "zebra" in again.vocabulary or features.analyzer != "word"

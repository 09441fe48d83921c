"""Honesty checks on two planted worlds: a probe that reads a label word, and one that reads a signal."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from tripwire.probes.honesty import auroc_columns, honesty_checks
from tripwire.probes.splits import grouped_split

FILLER = "email meeting report schedule budget review office memo quarter client lunch plan".split()
N, D = 360, 64


def _world(signal_in_activations: bool, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=N)
    says_word = (y == 1) & (rng.random(N) < 0.6)  # 60% of positives say "leverage"
    texts = [" ".join(rng.choice(FILLER, size=10).tolist() + (["leverage"] if w else [])) for w in says_word]
    X = rng.normal(size=(N, D))
    if signal_in_activations:
        X[:, 0] += 3.0 * y  # the model state differs whether or not the word is said
    else:
        X[:, 0] += 3.0 * says_word  # the activation only encodes the word
    groups = np.arange(N) % 12
    return X, y, np.array(texts, dtype=object), groups


def _run(signal: bool):  # type: ignore[no-untyped-def]
    X, y, texts, groups = _world(signal)
    split = grouped_split(groups, y, seed=0)
    return honesty_checks(
        X,
        y,
        list(texts),
        split,
        LogisticRegression(max_iter=500),
        label_words=["leverage"],
        n_random=200,
        n_boot=200,
        seed=0,
    )


def test_probe_that_reads_the_word_is_flagged() -> None:
    rep = _run(signal=False)
    assert rep.word_filtered_probe_auroc is not None
    assert rep.word_filtered_probe_auroc.value < 0.7  # nothing left once the word is gone
    assert rep.probe_auroc.value < rep.lexical_auroc.value + rep.margin  # words do as well
    assert rep.reads_words_only


def test_probe_with_real_signal_passes_and_beats_controls() -> None:
    rep = _run(signal=True)
    assert not rep.reads_words_only
    assert rep.probe_auroc.value > rep.lexical_auroc.value + 0.05
    assert rep.word_filtered_probe_auroc is not None and rep.word_filtered_probe_auroc.value > 0.9
    assert rep.word_filtered_lexical_auroc is not None and rep.word_filtered_lexical_auroc.value < 0.75
    assert (
        rep.shuffled_label_auroc.low < 0.5 < rep.shuffled_label_auroc.high
        or abs(rep.shuffled_label_auroc.value - 0.5) < 0.15
    )
    assert 0.4 < rep.random_direction_mean < 0.6
    assert rep.random_direction_p95 < rep.probe_auroc.low
    assert rep.n_random == 200 and rep.n_word_filtered > 0
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["reads_words_only"] is False and "value" in d["lexical_auroc"]


def test_too_few_word_free_examples_is_noted_not_flagged() -> None:
    X, y, texts, groups = _world(False)
    texts = np.array([t + " leverage" for t in texts], dtype=object)  # every text says the word
    rep = honesty_checks(
        X,
        y,
        list(texts),
        grouped_split(groups, y),
        LogisticRegression(max_iter=500),
        label_words=["leverage"],
        n_random=20,
        n_boot=0,
    )
    assert rep.word_filtered_probe_auroc is None and not rep.reads_words_only
    assert any("too few to judge" in n for n in rep.notes)


def test_auroc_columns_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=50)
    S = rng.normal(size=(50, 4)) + y[:, None] * np.arange(4)
    expected = [roc_auc_score(y, S[:, j]) for j in range(4)]
    np.testing.assert_allclose(auroc_columns(y, S), expected)


def test_mismatched_inputs_are_rejected() -> None:
    X, y, texts, groups = _world(True)
    with pytest.raises(ValueError, match="one of each per transcript"):
        honesty_checks(
            X, y, list(texts)[:-1], grouped_split(groups, y), LogisticRegression(), label_words=["x"]
        )

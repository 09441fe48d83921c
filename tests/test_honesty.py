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


def test_a_word_check_that_could_not_run_is_none_not_false() -> None:
    """Every text says the label word, so the word-filtered subset is empty: the check did not run."""
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
    assert rep.word_filtered_probe_auroc is None and rep.reads_words_only is None
    assert rep.n_word_filtered == 0 and any("too few to judge" in n for n in rep.notes)
    assert json.loads(json.dumps(rep.to_dict()))["reads_words_only"] is None
    no_words = honesty_checks(X, y, list(texts), grouped_split(groups, y), LogisticRegression(max_iter=500),
                              label_words=[], n_random=20, n_boot=0)
    assert no_words.reads_words_only is None and any("no label words" in n for n in no_words.notes)


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


def test_lexical_check_fires_when_the_words_carry_the_label() -> None:
    """A leaky world: the text says the label word on every positive and the activation reads it."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=N)
    texts = [" ".join(rng.choice(FILLER, size=10).tolist() + (["leverage"] if v else [])) for v in y]
    X = rng.normal(size=(N, D))
    X[:, 0] += 3.0 * y
    groups = np.arange(N) % 12
    rep = honesty_checks(X, y, texts, grouped_split(groups, y), LogisticRegression(max_iter=500),
                         label_words=["leverage"], n_random=50, n_boot=50)
    assert rep.lexical_auroc.value > 0.95 and rep.beats_lexical is False
    assert _run(signal=True).beats_lexical is True  # the same check passes when the words do not say it


def test_shuffled_label_check_fires_when_the_label_is_the_dominant_variance() -> None:
    """Today's window asymmetry in miniature: positives and negatives differ along the direction of
    largest variance, so LAT (top principal direction of differences) finds the label with shuffled
    labels too; a world with a small signal leaves the shuffled probe at chance."""
    from tripwire.probes.estimators import LATProbe

    def shuffled(strength: float) -> bool:
        rng = np.random.default_rng(2)
        y = rng.integers(0, 2, size=N)
        X = rng.normal(size=(N, D))
        X[:, 0] += strength * y
        rep = honesty_checks(X, y, [f"t{i}" for i in range(N)], grouped_split(np.arange(N) % 12, y),
                             LATProbe(), label_words=["x"], n_random=20, n_boot=200, seed=0)
        return rep.shuffled_off_chance

    assert shuffled(12.0) is True
    assert shuffled(0.0) is False


def test_shuffled_label_check_is_not_run_over_too_few_test_groups() -> None:
    """The same leak as above, but the bootstrap resamples the test split's few families: no interval,
    so no verdict either way (None, with the reason), where a tight-looking interval once said True."""
    from tripwire.probes.estimators import LATProbe

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=N)
    X = rng.normal(size=(N, D))
    X[:, 0] += 12.0 * y
    families = np.arange(N) % 12
    rep = honesty_checks(X, y, [f"t{i}" for i in range(N)], grouped_split(families, y), LATProbe(),
                         groups=families, label_words=["x"], n_random=20, n_boot=200, seed=0)
    assert rep.shuffled_label_auroc.n_units < 10 and rep.shuffled_label_auroc.over == "groups"
    assert rep.shuffled_off_chance is None
    assert any("shuffled_off_chance is None" in note for note in rep.notes)


def test_random_direction_check_fires_on_a_probe_without_signal() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=N)
    X = rng.normal(size=(N, D))  # nothing to find
    rep = honesty_checks(X, y, [f"t{i}" for i in range(N)], grouped_split(np.arange(N) % 12, y),
                         LogisticRegression(max_iter=500), label_words=["x"], n_random=200, n_boot=0)
    assert rep.beats_random_directions is False
    assert _run(signal=True).beats_random_directions is True

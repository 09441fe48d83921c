"""Honesty checks reported beside every probe result, on the same grouped split.

A probe AUROC alone does not show the probe reads anything beyond the words on the page. Each check
answers one way it could be fooling us: a bag-of-words model may do as well (lexical baseline); the
probe may fail once label words are gone (word-filtered); the pipeline may leak labels (shuffled
labels should give ~0.5); and the probe may be no better than an arbitrary direction (random
directions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from jaxtyping import Float
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from tripwire.errors import TripwireError
from tripwire.probes.metrics import UnitMetric, auroc_ci
from tripwire.probes.scoring import decision_scores
from tripwire.probes.splits import GroupedSplit, grouped_split, word_filtered
from tripwire.probes.sweep import fit_estimator


class HonestyInputError(TripwireError, ValueError):
    """Inputs that cannot support the honesty checks."""


@dataclass(frozen=True)
class HonestyReport:
    """All checks for one probe on one split.

    Each verdict is a flag that fires on a leak, or None when the check could not run (with the
    reason in `notes`), never a silent False:

    - `beats_lexical`: the probe's test AUROC exceeds the bag-of-words baseline's by `margin`.
    - `reads_words_only`: the probe does not beat the lexical baseline AND collapses on the
      word-filtered test subset (its AUROC there drops by `collapse_drop` or to the random-direction
      95th percentile). None when that subset is too small or single-class.
    - `shuffled_off_chance`: the probe method refit on shuffled training labels has a test interval
      that excludes 0.5 (either side): the method finds the label without labels (e.g. the label is
      the data's dominant variance, as with asymmetric windows) or the split leaks. None when the test
      split has too few units for an interval.
    - `beats_random_directions`: the probe's AUROC exceeds the 95th percentile of random directions.
    """

    probe_auroc: UnitMetric
    lexical_auroc: UnitMetric
    word_filtered_probe_auroc: UnitMetric | None
    word_filtered_lexical_auroc: UnitMetric | None
    n_word_filtered: int
    shuffled_label_auroc: UnitMetric
    random_direction_mean: float
    random_direction_p95: float
    n_random: int
    reads_words_only: bool | None
    margin: float
    collapse_drop: float
    beats_lexical: bool = False
    shuffled_off_chance: bool | None = False
    beats_random_directions: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auroc_columns(y: ArrayLike, scores: Float[np.ndarray, "n m"]) -> Float[np.ndarray, " m"]:
    """AUROC of every column of `scores` at once (Mann-Whitney U via average ranks)."""
    y_arr = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y_arr.sum()), int((~y_arr).sum())
    if n_pos == 0 or n_neg == 0:
        raise HonestyInputError("AUROC needs both classes in the test split.")
    ranks = rankdata(scores, axis=0)
    return (ranks[y_arr].sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _lexical_scores(
    texts: Sequence[str], y: np.ndarray, train: np.ndarray, ngram_range: tuple[int, int]
) -> np.ndarray:
    vec = TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=True)
    feats = vec.fit_transform([texts[i] for i in train])
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(feats, y[train])
    return np.asarray(clf.decision_function(vec.transform(list(texts))), dtype=np.float64)


def honesty_checks(
    X: ArrayLike,
    y: ArrayLike,
    texts: Sequence[str],
    split: GroupedSplit,
    prototype: Any,
    *,
    label_words: Sequence[str],
    estimator: Any = None,
    pair_ids: ArrayLike | None = None,
    groups: ArrayLike | None = None,
    n_random: int = 100,
    n_boot: int = 1000,
    seed: int = 0,
    margin: float = 0.05,
    collapse_drop: float = 0.1,
    min_filtered: int = 10,
    lexical_ngram_range: tuple[int, int] = (1, 1),
) -> HonestyReport:
    """Run every check with one row per transcript (`X`: transcript x d_model, `texts` aligned).

    Probes train on `split.train` and are scored on `split.test`. `estimator` is the already-fitted
    probe (fit here from a `clone` of `prototype` when None). `groups` turns on a grouped bootstrap. The
    lexical baseline is TF-IDF + logistic regression fit on the training texts; unigrams by default,
    since bigrams of a few hundred transcripts mostly add noise features.
    """
    X_arr = np.asarray(X, dtype=np.float64)
    y_arr = np.asarray(y).astype(np.int64)
    n = X_arr.shape[0]
    if y_arr.shape[0] != n or len(texts) != n:
        raise HonestyInputError(
            f"X has {n} rows, y {y_arr.shape[0]}, texts {len(texts)}; pass one of each per transcript."
        )
    tr, te = split.train, split.test
    pairs = None if pair_ids is None else np.asarray(pair_ids)
    g = None if groups is None else np.asarray(groups)
    rng = np.random.default_rng(seed)
    notes: list[str] = []

    def ci(idx: np.ndarray, s: np.ndarray) -> UnitMetric:
        return auroc_ci(y_arr[idx], s[idx], n_boot=n_boot, seed=seed, groups=None if g is None else g[idx])

    if estimator is None:
        estimator = fit_estimator(
            clone(prototype), X_arr[tr], y_arr[tr], None if pairs is None else pairs[tr]
        )
    probe_s = decision_scores(estimator, X_arr)
    lex_s = _lexical_scores(texts, y_arr, tr, lexical_ngram_range)
    probe = ci(te, probe_s)
    lexical = ci(te, lex_s)

    wf_probe = wf_lex = None
    has_words = any(w.strip() for w in label_words)
    keep = te[word_filtered([texts[i] for i in te], label_words)] if has_words else te[:0]
    if not has_words:
        notes.append("no label words given (they come from the training split), so the word-filtered check "
                     "did not run: reads_words_only is None.")
    elif keep.size >= min_filtered and np.unique(y_arr[keep]).size == 2:
        wf_probe, wf_lex = ci(keep, probe_s), ci(keep, lex_s)
    else:
        notes.append(
            f"word-filtered test subset has {keep.size} transcripts "
            f"({np.unique(y_arr[keep]).size} class(es)); too few to judge, so reads_words_only is None "
            "(not run)."
        )

    shuffled_y = y_arr.copy()
    shuffled_y[tr] = rng.permutation(y_arr[tr])
    shuffled_est = fit_estimator(
        clone(prototype), X_arr[tr], shuffled_y[tr], None if pairs is None else pairs[tr]
    )
    shuffled = ci(te, decision_scores(shuffled_est, X_arr))
    shuffled_off_chance: bool | None = None
    if shuffled.low is None or shuffled.high is None:
        notes.append(f"shuffled-label probe scores {shuffled}; without an interval shuffled_off_chance is None "
                     "(not run).")
    else:
        shuffled_off_chance = bool(shuffled.low > 0.5 or shuffled.high < 0.5)
    if shuffled_off_chance:
        notes.append(
            f"shuffled-label probe scores {shuffled} on test, off chance: the method finds the label "
            "without labels (the label is the data's dominant variance, e.g. asymmetric windows) or "
            "the split leaks (duplicate transcripts, features that encode the group)."
        )

    dirs = rng.standard_normal((X_arr.shape[1], n_random))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    rand_auc = auroc_columns(y_arr[te], X_arr[te] @ dirs)
    rand_mean, rand_p95 = float(rand_auc.mean()), float(np.quantile(rand_auc, 0.95))
    if probe.value <= rand_p95:
        notes.append(
            f"probe AUROC {probe.value:.3f} does not beat the random-direction 95th pct {rand_p95:.3f}."
        )

    reads_words_only: bool | None = None
    if wf_probe is not None:
        not_beating = probe.value < lexical.value + margin
        collapses = wf_probe.value <= probe.value - collapse_drop or wf_probe.value <= rand_p95
        reads_words_only = bool(not_beating and collapses)
    return HonestyReport(
        probe_auroc=probe,
        lexical_auroc=lexical,
        word_filtered_probe_auroc=wf_probe,
        word_filtered_lexical_auroc=wf_lex,
        n_word_filtered=int(keep.size),
        shuffled_label_auroc=shuffled,
        random_direction_mean=rand_mean,
        random_direction_p95=rand_p95,
        n_random=n_random,
        reads_words_only=reads_words_only,
        margin=margin,
        collapse_drop=collapse_drop,
        beats_lexical=bool(probe.value >= lexical.value + margin),
        shuffled_off_chance=shuffled_off_chance,
        beats_random_directions=bool(probe.value > rand_p95),
        notes=notes,
    )


def lexical_baseline_auroc(
    texts: Sequence[str], y: ArrayLike, groups: ArrayLike, *, seed: int = 0, n_boot: int = 300
) -> dict[str, Any]:
    """The bag-of-words baseline on its own grouped split of one dataset (for `tripwire eval`, where no
    training split exists): train on the train+val families, AUROC with CI on the held-out ones."""
    split = grouped_split(np.asarray(groups), np.asarray(y), seed=seed)
    return lexical_baseline_on(texts, y, split, n_boot=n_boot, seed=seed)


def lexical_baseline_on(
    texts: Sequence[str], y: ArrayLike, split: GroupedSplit, *, n_boot: int = 300, seed: int = 0
) -> dict[str, Any]:
    """The bag-of-words baseline on a given split (train+val fit, test AUROC with CI)."""
    y_arr = np.asarray(y)
    train = np.concatenate([split.train, split.val])
    scores = _lexical_scores(texts, y_arr, train, (1, 1))
    return auroc_ci(y_arr[split.test], scores[split.test], n_boot=n_boot, seed=seed).to_dict()

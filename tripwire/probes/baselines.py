"""Baselines reported beside every probe number, on the same split and the same scored tokens.

A probe result means something only next to what the text alone gives. Two text baselines:

- `span_bow_scores` (baseline i): bag-of-words on exactly the scored token span. On identical-token
  pairs both members' spans are the same string, so it must sit at 0.5; anything else means the
  design leaks the label through the window (e.g. a tool-call tag in one class's windows only).
- `StreamingTextMonitor` (baseline ii): bag-of-words over everything visible at each scored token
  (prompt + reply so far), scored with the same streaming statistic as the probe. This is the
  black-box monitor a white-box probe has to beat.

And two activation controls: `random_direction_aurocs` (norm-matched random directions through the
same statistic) and `shuffled_labels` (labels to refit the probe method on). The embedding-layer
baseline (iii) is the probe method on `blocks.0.resid_pre` rows and needs no code of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Float, Int
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from tripwire.errors import TripwireError
from tripwire.probes.metrics import auroc
from tripwire.probes.scoring import DEFAULT_WINDOW, statistic_values


class BaselineInputError(TripwireError, ValueError):
    """Inputs a baseline cannot be fitted or scored on."""


def span_text(text: str, char_spans: Sequence[Sequence[int]], positions: Sequence[int]) -> str:
    """The characters of exactly the scored tokens, in order (what baseline i reads)."""
    return "".join(text[char_spans[p][0] : char_spans[p][1]] for p in positions)


def _check_texts(texts: Sequence[str], y: np.ndarray, what: str) -> None:
    if len(texts) != len(y):
        raise BaselineInputError(f"{len(texts)} {what} for {len(y)} labels; pass one per transcript.")
    if np.unique(y).size < 2:
        raise BaselineInputError(f"the training {what} hold one class only; a baseline needs both.")


def span_bow_scores(train_texts: Sequence[str], y_train: Any, test_texts: Sequence[str],
                    C: float = 1.0) -> Float[np.ndarray, " n_test"]:
    """Baseline (i): TF-IDF (sublinear, unigrams) + logistic regression fit on the training spans.

    A text with no known word (an empty span) gets the intercept, so identical spans tie exactly.
    """
    y = np.asarray(y_train).astype(np.int64)
    _check_texts(train_texts, y, "span texts")
    vec = TfidfVectorizer(sublinear_tf=True)
    try:
        feats = vec.fit_transform(list(train_texts))
    except ValueError:  # every span empty or stop-word only: nothing to read, all test scores tie
        return np.zeros(len(test_texts))
    clf = LogisticRegression(C=C, max_iter=2000).fit(feats, y)
    return np.asarray(clf.decision_function(vec.transform(list(test_texts))), dtype=np.float64)


@dataclass
class StreamingTextMonitor:
    """Baseline (ii): a bag-of-words classifier over the text visible at each scored token.

    Fitted on prefixes of the training transcripts (`cuts_per_transcript` cut points spread evenly
    over each transcript's scored tokens, every prefix labelled with its transcript's label) and scored
    at every cut. Both work incrementally: a transcript's words are found once and counted up to each
    cut, so T prefixes cost one pass over the text, not T vectorisations (prompts of agentic scenarios
    run to thousands of words). A prefix counts the words it holds completely. The features are TF-IDF
    with sublinear tf and l2 norm; `vectorizer_` is the equivalent scikit-learn vectoriser.
    """

    C: float = 1.0
    cuts_per_transcript: int = 8

    def _words(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary ids and end characters of the known words of `text`, in order."""
        found = [(self._vocab.get(m.group().lower()), m.end()) for m in self._pattern.finditer(text)]
        known = [(v, e) for v, e in found if v is not None]
        return (np.array([v for v, _ in known], dtype=np.int64), np.array([e for _, e in known], dtype=np.int64))

    def _counts(self, text: str, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(local vocabulary ids, counts at each cut: cuts x local) of the words visible at each cut."""
        ids, ends = self._words(text)
        local, slot = np.unique(ids, return_inverse=True)
        counts = np.zeros((cuts.size + 1, local.size))
        np.add.at(counts, (np.searchsorted(cuts, ends, side="left"), slot), 1.0)  # first cut showing the word
        return local, np.cumsum(counts, axis=0)[: cuts.size]

    def fit(self, texts: Sequence[str], cuts: Sequence[Sequence[int] | np.ndarray], y: Any) -> StreamingTextMonitor:
        from scipy.sparse import csr_matrix, vstack
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        y_arr = np.asarray(y).astype(np.int64)
        _check_texts(texts, y_arr, "texts")
        if len(cuts) != len(texts):
            raise BaselineInputError(f"{len(cuts)} cut lists for {len(texts)} texts; pass one per transcript.")
        counter = CountVectorizer().fit(list(texts))
        self._vocab: dict[str, int] = dict(counter.vocabulary_)
        self._pattern = re.compile(counter.token_pattern)
        n_vocab = len(self._vocab)
        blocks, labels = [], []
        for text, cut_list, label in zip(texts, cuts, y_arr.tolist(), strict=True):
            c = np.asarray(cut_list, dtype=np.int64)
            if c.size == 0:
                continue
            pick = np.unique(np.linspace(0, c.size - 1, min(self.cuts_per_transcript, c.size)).round().astype(int))
            local, counts = self._counts(text, c[pick])
            rows, cols = np.nonzero(counts)
            blocks.append(csr_matrix((counts[rows, cols], (rows, local[cols])), shape=(pick.size, n_vocab)))
            labels += [label] * pick.size
        tfidf = TfidfTransformer(sublinear_tf=True).fit(vstack(blocks))
        feats = tfidf.transform(vstack(blocks))
        self.classifier_ = LogisticRegression(C=self.C, max_iter=2000).fit(feats, np.asarray(labels))
        self.vectorizer_ = TfidfVectorizer(vocabulary=self._vocab, sublinear_tf=True).fit([""])
        self.vectorizer_.idf_ = tfidf.idf_
        self._idf = np.asarray(tfidf.idf_, dtype=np.float64)
        self._coef = np.asarray(self.classifier_.coef_[0], dtype=np.float64)
        self._intercept = float(self.classifier_.intercept_[0])
        return self

    def score(self, text: str, cuts: Sequence[int] | np.ndarray) -> Float[np.ndarray, " cuts"]:
        """The classifier's decision value on `text[:cut]` for every cut (non-decreasing)."""
        c = np.asarray(cuts, dtype=np.int64)
        if c.size and np.any(np.diff(c) < 0):
            raise BaselineInputError("cuts must be non-decreasing (scored tokens in order).")
        local, counts = self._counts(text, c)
        if local.size == 0:
            return np.full(c.size, self._intercept)
        tf = np.where(counts > 0, 1.0 + np.log(np.maximum(counts, 1.0)), 0.0) * self._idf[local]
        norm = np.linalg.norm(tf, axis=1)
        dot = tf @ self._coef[local]
        return np.where(norm > 0, dot / np.where(norm > 0, norm, 1.0), 0.0) + self._intercept

    def score_many(self, texts: Sequence[str], cuts: Sequence[Sequence[int] | np.ndarray]
                   ) -> list[Float[np.ndarray, " cuts"]]:
        return [self.score(t, c) for t, c in zip(texts, cuts, strict=True)]


def random_direction_aurocs(
    test_rows: Sequence[Float[np.ndarray, "tok d"]],
    y_test: Any,
    coef: Float[np.ndarray, " d"],
    intercept: float,
    *,
    n_random: int = 100,
    seed: int = 0,
    statistic: str = "streaming",
    window: int = DEFAULT_WINDOW,
) -> Float[np.ndarray, " n_random"]:
    """AUROC of `statistic` for `n_random` random directions with the probe's norm and intercept, so
    the same window and statistic see scores on the probe's scale."""
    y = np.asarray(y_test).astype(np.int64)
    norm = float(np.linalg.norm(coef))
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((len(coef), n_random))
    dirs *= norm / np.linalg.norm(dirs, axis=0, keepdims=True)
    projected = [np.asarray(rows, dtype=np.float64) @ dirs + intercept for rows in test_rows]  # (tok, n_random)
    out = np.empty(n_random)
    for j in range(n_random):
        values = statistic_values([p[:, j] for p in projected], statistic, window=window)
        out[j] = auroc(y, values)
    return out


def shuffled_labels(y: Any, pair_ids: Any | None, seed: int) -> Int[np.ndarray, " n"]:
    """Transcript labels shuffled at random; with pairs, each pair's two labels are kept or swapped
    together at random, so paired estimators still see one of each class per pair."""
    y_arr = np.asarray(y).astype(np.int64)
    rng = np.random.default_rng(seed)
    if pair_ids is None:
        return rng.permutation(y_arr)
    pairs = np.asarray(pair_ids)
    out = y_arr.copy()
    for p in np.unique(pairs):
        if rng.random() < 0.5:
            idx = np.flatnonzero(pairs == p)
            out[idx] = out[idx[::-1]]
    return out

"""Baselines reported beside every probe number, on the same split and the same scored tokens.

A probe result means something only next to what the text alone gives. Two text baselines:

- baseline (i): a text classifier on exactly the scored token span. On identical-token pairs both
  members' spans are the same string, so it must sit at 0.5; anything else means the design leaks the
  label through the window (e.g. a tool-call tag in one class's windows only). `span_bow_scores` is the
  unigram version; `text_monitors.NgramTextMonitor` the order-aware one reports use.
- `StreamingTextMonitor` (baseline ii): a text classifier over everything visible at each scored token
  (prompt + reply so far), scored with the same streaming statistic as the probe. This is the
  black-box monitor a white-box probe has to beat; `StreamingTextMonitor.order_aware()` chooses among
  word and character n-grams on the training side.

And two activation controls: `random_direction_aurocs` (norm-matched random directions through the
same statistic) and the label-permutation null (`permutation.permutation_null`; `shuffled_labels` is
one draw of it, kept for old callers). The embedding-layer baseline (iii) is the probe method on
`blocks.0.resid_pre` rows and needs no code of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Float, Int
from scipy.sparse import csr_matrix, vstack
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from tripwire.errors import TripwireError
from tripwire.probes.metrics import auroc
from tripwire.probes.permutation import permute_labels
from tripwire.probes.scoring import DEFAULT_WINDOW, statistic_values
from tripwire.probes.text_monitors import (
    C_GRID,
    NGRAM_GRID,
    WORD_UNIGRAMS,
    GramReader,
    NgramFeatures,
    as_tuple,
    classifier,
    cv_folds,
    merge_identical_columns,
    select_variant,
)


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


def _visible_counts(ids: np.ndarray, ends: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(local vocabulary ids, counts at each cut: cuts x local) of the n-grams visible at each cut."""
    local, slot = np.unique(ids, return_inverse=True)
    counts = np.zeros((cuts.size + 1, local.size))
    np.add.at(counts, (np.searchsorted(cuts, ends, side="left"), slot), 1.0)  # first cut showing the n-gram
    return local, np.cumsum(counts, axis=0)[: cuts.size]


def _sublinear(counts: np.ndarray) -> np.ndarray:
    return np.where(counts > 0, 1.0 + np.log(np.maximum(counts, 1.0)), 0.0)


@dataclass
class StreamingTextMonitor:
    """Baseline (ii): a text classifier over the text visible at each scored token.

    Fitted on prefixes of the training transcripts (`cuts_per_transcript` cut points spread evenly
    over each transcript's scored tokens, every prefix labelled with its transcript's label) and scored
    at every cut. Both work incrementally: a transcript's n-grams are found once and counted up to each
    cut, so T prefixes cost one pass over the text, not T vectorisations (prompts of agentic scenarios
    run to thousands of words). A prefix counts the words it holds completely (`GramReader`). The features
    are TF-IDF with sublinear tf and l2 norm; `vectorizer_` is the equivalent scikit-learn vectoriser.

    By default word unigrams at C=1 (the original monitor). Give several `features` or `C` (as
    `order_aware()` does: word n-grams 1-3 and character n-grams) and the variant is chosen by grouped
    cross-validation over the training transcripts, each held-out transcript scored by the maximum over
    its prefixes; the vocabulary and IDF come from all training texts (no labels). `chosen_` names it.
    """

    C: float | tuple[float, ...] = 1.0
    cuts_per_transcript: int = 8
    features: NgramFeatures | tuple[NgramFeatures, ...] = WORD_UNIGRAMS
    n_splits: int = 5
    seed: int = 0

    @classmethod
    def order_aware(cls, **settings: Any) -> StreamingTextMonitor:
        """The monitor a probe is compared with: every n-gram variant, C chosen on the training side."""
        return cls(C=C_GRID, features=NGRAM_GRID, **settings)

    def _prefix_rows(self, reader: GramReader, texts: Sequence[str], cuts: Sequence[np.ndarray]) -> Any:
        blocks = []
        for text, c in zip(texts, cuts, strict=True):
            local, counts = _visible_counts(*reader.read(text), c)
            rows, cols = np.nonzero(counts)
            blocks.append(csr_matrix((counts[rows, cols], (rows, local[cols])), shape=(c.size, len(reader.vocabulary))))
        return vstack(blocks).tocsr()

    def fit(self, texts: Sequence[str], cuts: Sequence[Sequence[int] | np.ndarray], y: Any,
            groups: Any | None = None) -> StreamingTextMonitor:
        """Fit on prefixes of `texts`; `groups` (pairs, families) stay whole in the cross-validation."""
        y_arr = np.asarray(y).astype(np.int64)
        _check_texts(texts, y_arr, "texts")
        if len(cuts) != len(texts):
            raise BaselineInputError(f"{len(cuts)} cut lists for {len(texts)} texts; pass one per transcript.")
        have = np.array([i for i, c in enumerate(cuts) if len(c)], dtype=np.int64)  # transcripts with a prefix
        picked = []
        for i in have.tolist():
            c = np.asarray(cuts[i], dtype=np.int64)
            picked.append(c[np.unique(np.linspace(0, c.size - 1, min(self.cuts_per_transcript, c.size)).round().astype(int))])
        owner = np.repeat(np.arange(have.size), [p.size for p in picked])  # row -> position in `have`
        y_have = y_arr[have]
        row_y = y_have[owner]
        candidates: dict[NgramFeatures, tuple[GramReader, Any, Any]] = {}
        for f in as_tuple(self.features):
            try:
                reader = GramReader.fit(f, texts)
            except ValueError:  # no n-gram of this kind in any text
                continue
            counts = self._prefix_rows(reader, [texts[i] for i in have.tolist()], picked)
            tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
            candidates[f] = (reader, tfidf, tfidf.transform(counts))
        if not candidates:
            raise BaselineInputError("the training texts hold no words to read; a text monitor needs some.")
        Cs = as_tuple(self.C)
        merged: dict[NgramFeatures, Any] = {}  # the CV fits on equal columns merged: same optimum, fewer entries

        def held_out(f: NgramFeatures, tr: np.ndarray, te: np.ndarray) -> list[float]:
            if f not in merged:
                merged[f] = merge_identical_columns(candidates[f][2])[0]
            x = merged[f]
            rows_tr, rows_te = np.isin(owner, tr), np.isin(owner, te)
            te_owner = np.searchsorted(te, owner[rows_te])  # te is sorted
            out = []
            for c in Cs:
                d = classifier(c).fit(x[rows_tr], row_y[rows_tr]).decision_function(x[rows_te])
                per = np.full(te.size, -np.inf)
                np.maximum.at(per, te_owner, d)
                out.append(auroc(y_have[te], per))
            return out

        g = None if groups is None else np.asarray(groups)[have]
        folds = cv_folds(y_have, g, self.n_splits, self.seed) if np.unique(y_have).size == 2 else []
        self.chosen_, self.cv_table_ = select_variant(list(candidates), Cs, folds, held_out)
        self._reader, tfidf, feats = candidates[self.chosen_.features]
        self.classifier_ = classifier(self.chosen_.C).fit(feats, row_y)
        self.vectorizer_ = self.chosen_.features.vectorizer(vocabulary=self._reader.vocabulary).fit([""])
        self.vectorizer_.idf_ = tfidf.idf_
        self._idf = np.asarray(tfidf.idf_, dtype=np.float64)
        self._coef = np.asarray(self.classifier_.coef_[0], dtype=np.float64)
        self._intercept = float(self.classifier_.intercept_[0])
        return self

    def score(self, text: str, cuts: Sequence[int] | np.ndarray) -> Float[np.ndarray, " cuts"]:
        """The classifier's decision value on `text[:cut]` for every cut (non-decreasing).

        N-grams visible from the first cut on and never seen again (most of a long prompt) add a constant
        to the norm and the dot product; only the rest get a column per cut."""
        c = np.asarray(cuts, dtype=np.int64)
        if c.size and np.any(np.diff(c) < 0):
            raise BaselineInputError("cuts must be non-decreasing (scored tokens in order).")
        ids, ends = self._reader.read(text)
        slot = np.searchsorted(c, ends, side="left")  # the first cut at which each n-gram is visible
        ids, slot = ids[slot < c.size], slot[slot < c.size]
        if ids.size == 0:
            return np.full(c.size, self._intercept)
        local, inv = np.unique(ids, return_inverse=True)
        moving = np.unique(inv[slot > 0])
        fixed = np.setdiff1d(np.arange(local.size), moving)
        w0 = _sublinear(np.bincount(inv, minlength=local.size)[fixed].astype(np.float64)) * self._idf[local[fixed]]
        sq0, dot0 = float(w0 @ w0), float(w0 @ self._coef[local[fixed]])
        counts = np.zeros((c.size, moving.size))
        sel = np.isin(inv, moving)
        np.add.at(counts, (slot[sel], np.searchsorted(moving, inv[sel])), 1.0)
        w = _sublinear(np.cumsum(counts, axis=0)) * self._idf[local[moving]]
        norm = np.sqrt(sq0 + np.einsum("ij,ij->i", w, w))
        dot = dot0 + w @ self._coef[local[moving]]
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
    """One draw of `permutation.permute_labels` (pairs swapped with probability 1/2). One draw is no null:
    use `permutation.permutation_null`, which takes >= 200 and checks their balance."""
    return permute_labels(y, pair_ids=pair_ids, n_perm=1, seed=seed)[0]

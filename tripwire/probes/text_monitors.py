"""Order-aware text monitors: the text baselines a probe number has to beat.

A unigram bag of words cannot read a label that lives in word order ("I could X, but I will Y" against
"I will X, but I could Y" hold the same words), so a probe that beats only a unigram monitor may be
reading nothing but word order. `NgramTextMonitor` tries word n-grams 1-1, 1-2 and 1-3 and character
n-grams inside word boundaries 2-4, each with logistic regression at several C, and keeps the variant that
cross-validates best on the training side only (whole groups per fold, so pairs and families never straddle
one). `chosen_` names the winner ("word 1-2, C=10"), so a report can name the monitor it compared against.

`GramReader` finds each known n-gram of a text with the character at which it becomes visible, which is
what the streaming monitor (`baselines.StreamingTextMonitor`) needs to score a growing prefix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from jaxtyping import Float, Int
from scipy.sparse import csc_matrix, csr_matrix
from scipy.sparse import vstack as vstack_sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from tripwire.errors import TripwireError
from tripwire.probes.metrics import auroc

Analyzer = Literal["word", "char_wb"]
Fold = tuple[np.ndarray, np.ndarray]


class TextMonitorInputError(TripwireError, ValueError):
    """Texts, labels or settings a text monitor cannot be fitted or scored on."""


@dataclass(frozen=True)
class NgramFeatures:
    """One feature set: TF-IDF (sublinear tf, l2 norm) over word or within-word character n-grams."""

    analyzer: Analyzer = "word"
    ngram_range: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        lo, hi = self.ngram_range
        if self.analyzer not in ("word", "char_wb") or not 1 <= lo <= hi:
            raise TextMonitorInputError(f"unsupported features {self.analyzer!r} {self.ngram_range}; use "
                                        "analyzer 'word' or 'char_wb' and 1 <= low <= high.")

    @property
    def name(self) -> str:
        return f"{'word' if self.analyzer == 'word' else 'char'} {self.ngram_range[0]}-{self.ngram_range[1]}"

    def vectorizer(self, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
        return TfidfVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range, sublinear_tf=True,
                               vocabulary=vocabulary)


WORD_UNIGRAMS = NgramFeatures()
NGRAM_GRID: tuple[NgramFeatures, ...] = (WORD_UNIGRAMS, NgramFeatures("word", (1, 2)), NgramFeatures("word", (1, 3)),
                                         NgramFeatures("char_wb", (2, 4)))
C_GRID: tuple[float, ...] = (1.0, 0.1, 10.0, 100.0)  # 1.0 first: a tie keeps the old default


@dataclass(frozen=True)
class MonitorChoice:
    """The variant a monitor uses, with the cross-validated AUROC that chose it (None when not chosen)."""

    features: NgramFeatures
    C: float
    cv_auroc: float | None = None
    n_folds: int = 0
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.features.name}, C={self.C:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "analyzer": self.features.analyzer, "ngram_range": list(self.features.ngram_range),
                "C": self.C, "cv_auroc": self.cv_auroc, "n_folds": self.n_folds, "note": self.note}


@dataclass(frozen=True)
class CVCell:
    """Mean held-out AUROC of one (features, C) over the training side's folds."""

    features: NgramFeatures
    C: float
    auroc: float
    n_folds: int


def classifier(C: float) -> LogisticRegression:
    """L2 logistic regression; liblinear, about 7x faster than lbfgs on these small sparse problems (a
    grid search fits ~80 of them per fold)."""
    return LogisticRegression(C=C, solver="liblinear", max_iter=2000)


def merge_identical_columns(*blocks: Any) -> list[csr_matrix]:
    """The same L2 logistic regression on fewer columns: columns equal in every row of every block become
    one column scaled by sqrt(their count). Exact: equal columns get equal weights at the optimum, so m of
    them with weight w each act as one column sqrt(m) * x with weight sqrt(m) * w and the same penalty.
    Templated prompts make most prefix columns equal (n-grams every transcript holds once), and a fit's cost
    is its stored entries. The blocks (training and test rows) are merged together, so test scores match."""
    stacked = csc_matrix(vstack_sparse([csr_matrix(b) for b in blocks]))
    stacked.sum_duplicates()
    stacked.sort_indices()
    ptr, idx, val = stacked.indptr, stacked.indices, stacked.data
    group: dict[bytes, int] = {}
    first: list[int] = []
    size: list[int] = []
    for j in range(stacked.shape[1]):
        key = idx[ptr[j] : ptr[j + 1]].tobytes() + val[ptr[j] : ptr[j + 1]].tobytes()
        g = group.setdefault(key, len(first))
        if g == len(first):
            first.append(j)
            size.append(0)
        size[g] += 1
    merged = csr_matrix(stacked[:, first].multiply(np.sqrt(np.asarray(size, dtype=np.float64))[None, :]))
    edges = np.cumsum([0, *(b.shape[0] for b in blocks)])
    return [merged[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def cv_folds(y: np.ndarray, groups: np.ndarray | None, n_splits: int = 5, seed: int = 0) -> list[Fold]:
    """Stratified folds of the training side that keep each group whole (a pair, a family; each example
    its own group when None); test folds holding one class are dropped (no AUROC there)."""
    g = np.arange(y.size) if groups is None else np.asarray(groups)
    n_groups = np.unique(g).size
    k = min(n_splits, n_groups, int(np.bincount(y, minlength=2).min()))
    if k < 2:
        return []
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in splitter.split(np.zeros(y.size), y, g)
            if np.unique(y[te]).size == 2 and np.unique(y[tr]).size == 2]


def select_variant(features: Sequence[NgramFeatures], Cs: Sequence[float], folds: Sequence[Fold],
                   held_out: Callable[[NgramFeatures, np.ndarray, np.ndarray], list[float]]
                   ) -> tuple[MonitorChoice, list[CVCell]]:
    """The (features, C) with the best mean held-out AUROC. `held_out(f, train, test)` gives one AUROC per C
    (one vectorisation serves every C). Ties keep the earliest cell, so the grid lists simplest first."""
    if len(features) == 1 and len(Cs) == 1:
        return MonitorChoice(features[0], float(Cs[0]), note="fixed: one variant, nothing to choose"), []
    if not folds:
        return (MonitorChoice(features[0], float(Cs[0]), note="not cross-validated: too few groups or examples "
                              "of a class on the training side; the first variant is used"), [])
    cells = []
    for f in features:
        per_fold = np.array([held_out(f, tr, te) for tr, te in folds])  # folds x Cs
        cells += [CVCell(f, float(c), float(per_fold[:, j].mean()), len(folds)) for j, c in enumerate(Cs)]
    best = max(cells, key=lambda cell: cell.auroc)  # max keeps the first of equal cells
    return MonitorChoice(best.features, best.C, best.auroc, best.n_folds, "chosen by grouped cross-validation "
                         "on the training side"), cells


def check_labels(n_texts: int, y: Any, what: str) -> np.ndarray:
    y_arr = np.asarray(y).astype(np.int64)
    if n_texts != y_arr.size:
        raise TextMonitorInputError(f"{n_texts} {what} for {y_arr.size} labels; pass one per transcript.")
    if np.unique(y_arr).size < 2:
        raise TextMonitorInputError(f"the training {what} hold one class only; a text monitor needs both.")
    return y_arr


@dataclass
class NgramTextMonitor:
    """Logistic regression on TF-IDF n-grams, with the feature set and C chosen by grouped CV on the data
    it is fitted on. `fit(texts, y, groups)` then `score(texts)` (decision values, higher = label 1).

    A single `features` and a single `C` fit that variant with no CV. A text with no known n-gram (an
    empty span) gets the intercept, so identical texts always tie. `chosen_` is the variant used and
    `cv_table_` every cell's held-out AUROC.
    """

    features: NgramFeatures | tuple[NgramFeatures, ...] = NGRAM_GRID
    C: float | tuple[float, ...] = C_GRID
    n_splits: int = 5
    seed: int = 0
    chosen_: MonitorChoice = field(init=False, repr=False)
    cv_table_: list[CVCell] = field(init=False, repr=False, default_factory=list)

    @staticmethod
    def _fit_scores(f: NgramFeatures, Cs: Sequence[float], train: list[str], y: np.ndarray,
                    test: list[str]) -> list[np.ndarray] | None:
        """Decision values on `test` for each C, or None when the training texts hold no n-gram."""
        vec = f.vectorizer()
        try:
            x_train = vec.fit_transform(train)
        except ValueError:  # empty vocabulary: every text is empty or too short for these n-grams
            return None
        x_train, x_test = merge_identical_columns(x_train, vec.transform(test))  # same optimum, fewer entries
        return [classifier(c).fit(x_train, y).decision_function(x_test) for c in Cs]

    def fit(self, texts: Sequence[str], y: Any, groups: Any | None = None) -> NgramTextMonitor:
        texts = list(texts)
        y_arr = check_labels(len(texts), y, "texts")
        features, Cs = as_tuple(self.features), as_tuple(self.C)

        def held_out(f: NgramFeatures, tr: np.ndarray, te: np.ndarray) -> list[float]:
            scores = self._fit_scores(f, Cs, [texts[i] for i in tr], y_arr[tr], [texts[i] for i in te])
            return [0.5] * len(Cs) if scores is None else [auroc(y_arr[te], s) for s in scores]

        folds = cv_folds(y_arr, None if groups is None else np.asarray(groups), self.n_splits, self.seed)
        self.chosen_, self.cv_table_ = select_variant(features, Cs, folds, held_out)
        self._vectorizer: TfidfVectorizer | None = self.chosen_.features.vectorizer()
        try:
            x = self._vectorizer.fit_transform(texts)
        except ValueError:  # nothing to read: every score ties at 0
            self._vectorizer = None
            return self
        self.classifier_ = classifier(self.chosen_.C).fit(x, y_arr)
        return self

    def score(self, texts: Sequence[str]) -> Float[np.ndarray, " n"]:
        if not hasattr(self, "chosen_"):
            raise TextMonitorInputError("score() before fit(); fit the monitor on training texts first.")
        if self._vectorizer is None:
            return np.zeros(len(texts))
        x = self._vectorizer.transform(list(texts))
        return np.asarray(self.classifier_.decision_function(x), dtype=np.float64)

    decision_function = score


def ngram_span_scores(train_texts: Sequence[str], y_train: Any, test_texts: Sequence[str], *,
                      groups: Any | None = None, seed: int = 0) -> tuple[Float[np.ndarray, " n_test"], MonitorChoice]:
    """Baseline (i) with order-aware features: the chosen monitor's scores on `test_texts`, and its choice."""
    monitor = NgramTextMonitor(seed=seed).fit(train_texts, y_train, groups)
    return monitor.score(test_texts), monitor.chosen_


def out_of_fold_scores(texts: Sequence[str], y: Any, groups: Any, *, n_splits: int = 5,
                       seed: int = 0) -> Float[np.ndarray, " n"] | None:
    """Each text scored by a monitor that never saw its group: outer folds keep groups whole, and each
    fold's monitor chooses its variant by grouped CV inside its own training side (nested, so no choice
    sees the text it scores). None when the groups and classes allow fewer than two folds. Scores from
    different folds are pooled into one AUROC, the usual reading of cross-validated scores."""
    texts = list(texts)
    y_arr = check_labels(len(texts), y, "texts")
    g = np.asarray(groups)
    k = min(n_splits, np.unique(g).size, int(np.bincount(y_arr, minlength=2).min()))
    if k < 2:
        return None
    scores = np.full(y_arr.size, np.nan)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for tr, te in splitter.split(np.zeros(y_arr.size), y_arr, g):
        if np.unique(y_arr[tr]).size < 2:
            return None
        monitor = NgramTextMonitor(n_splits=n_splits, seed=seed).fit([texts[i] for i in tr], y_arr[tr], g[tr])
        scores[te] = monitor.score([texts[i] for i in te])
    return scores


_WORD = re.compile(CountVectorizer().token_pattern)
_CHUNK = re.compile(r"\S+")
_GRAM_IDS: dict[NgramFeatures, dict[str, int]] = {}  # every n-gram met so far, per feature set: a process-wide id
_GRAM_NAMES: dict[NgramFeatures, list[str]] = {}


@lru_cache(maxsize=8192)
def all_grams(features: NgramFeatures, text: str) -> tuple[Int[np.ndarray, " k"], Int[np.ndarray, " k"]]:
    """(process-wide ids, visible-from character) of every n-gram of `text`, found once per text: a
    design's folds fit dozens of monitors on the same transcripts, and finding n-grams is most of a fit
    that does not solve. Arrays are read-only (shared by every reader)."""
    ids, names = _GRAM_IDS.setdefault(features, {}), _GRAM_NAMES.setdefault(features, [])
    found: list[tuple[str, int]] = []
    lo, hi = features.ngram_range
    if features.analyzer == "word":
        words = [(m.group().lower(), m.end()) for m in _WORD.finditer(text)]
        for n in range(lo, hi + 1):
            found += [(" ".join(w for w, _ in words[i : i + n]), words[i + n - 1][1]) for i in range(len(words) - n + 1)]
    else:
        char = _char_analyzer(features.ngram_range)
        for m in _CHUNK.finditer(text):
            found += [(g, m.end()) for g in char(m.group())]
    gids = np.empty(len(found), dtype=np.int64)
    for k, (gram, _) in enumerate(found):
        gid = ids.setdefault(gram, len(names))
        if gid == len(names):
            names.append(gram)
        gids[k] = gid
    ends = np.array([e for _, e in found], dtype=np.int64)
    gids.setflags(write=False)
    ends.setflags(write=False)
    return gids, ends


@lru_cache(maxsize=8)
def _char_analyzer(ngram_range: tuple[int, int]) -> Callable[[str], list[str]]:
    return CountVectorizer(analyzer="char_wb", ngram_range=ngram_range).build_analyzer()


class GramReader:
    """The known n-grams of a text, each with the character where it becomes visible (the end of its last
    word), so a prefix `text[:cut]` holds exactly the n-grams ending at or before `cut`. A prefix counts
    whole words only: a word cut in half shows none of its n-grams yet. At cuts that end a word (for
    character n-grams: a whitespace-delimited word) the counts equal scikit-learn's on the prefix."""

    def __init__(self, features: NgramFeatures, vocabulary: dict[str, int]) -> None:
        self.features = features
        self.vocabulary = vocabulary
        self._lookup = np.full(0, -1, dtype=np.int64)  # process-wide id -> vocabulary id (-1: unknown)

    @classmethod
    def fit(cls, features: NgramFeatures, texts: Sequence[str]) -> GramReader:
        """Vocabulary of every n-gram in `texts` (alphabetical ids, as scikit-learn's); ValueError when none."""
        found = [all_grams(features, t)[0] for t in texts]
        gids = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
        if gids.size == 0:
            raise ValueError("empty vocabulary; the texts hold no n-gram of this kind")
        names = _GRAM_NAMES[features]
        return cls(features, {gram: k for k, gram in enumerate(sorted(names[g] for g in gids.tolist()))})

    def read(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary ids, visible-from character) of the known n-grams of `text`."""
        gids, ends = all_grams(self.features, text)
        known = len(_GRAM_IDS[self.features])
        if self._lookup.size < known:  # ids met since the last read: look each up in the vocabulary once
            grown = np.full(known, -1, dtype=np.int64)
            grown[: self._lookup.size] = self._lookup
            names = _GRAM_NAMES[self.features]
            grown[self._lookup.size :] = [self.vocabulary.get(g, -1) for g in names[self._lookup.size : known]]
            self._lookup = grown
        local = self._lookup[gids]
        keep = local >= 0
        return local[keep], ends[keep]

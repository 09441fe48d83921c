"""Grouped train/val/test splits and the word-filtered subset.

Transcripts rendered from the same template family share wording, so a probe evaluated on a family it
was trained on can score well by memorising surface text. Every split here keeps each group in exactly
one part. `word_filtered` removes examples whose text gives the label away, to check a probe reads more
than label words.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Bool, Int
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedGroupKFold

from tripwire.errors import TripwireError


class TooFewGroupsError(TripwireError, ValueError):
    """Not enough distinct groups to give every split at least one."""


class SplitError(TripwireError, ValueError):
    """A split cannot satisfy its constraints (e.g. both classes in every part)."""


@dataclass(frozen=True)
class GroupedSplit:
    """Example indices of each part; no group appears in two parts."""

    train: Int[np.ndarray, " n_train"]
    val: Int[np.ndarray, " n_val"]
    test: Int[np.ndarray, " n_test"]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": self.train.tolist(),
            "val": self.val.tolist(),
            "test": self.test.tolist(),
            "seed": self.seed,
        }

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def grouped_split(
    groups: ArrayLike,
    y: ArrayLike | None = None,
    *,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    max_tries: int = 200,
) -> GroupedSplit:
    """Deterministic grouped split with roughly `fractions` of examples per part.

    scikit-learn's `StratifiedGroupKFold` (shuffled by `seed`) deals whole groups into k folds of
    near-equal size and class mix; each part takes whole folds in proportion to `fractions`
    (k = 5 for the default 60/20/20), so each part is within about one group of its share. With `y`,
    reshuffles are tried (deterministically) until every part holds both classes, since AUROC is
    undefined otherwise.
    """
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise SplitError(f"groups must be a non-empty 1-D array, got shape {g.shape}.")
    if len(fractions) != 3 or min(fractions) <= 0 or not np.isclose(sum(fractions), 1.0):
        raise SplitError(f"fractions must be three positive numbers summing to 1, got {fractions}.")
    uniq = np.unique(g)
    if uniq.size < 3:
        raise TooFewGroupsError(
            f"{uniq.size} distinct group(s) found ({', '.join(map(str, uniq[:5]))}); a grouped "
            "train/val/test split needs at least 3. Group by a finer key (e.g. template family "
            "instead of kind) or render more template families."
        )
    y_arr = None if y is None else np.asarray(y)
    max_folds = uniq.size
    if y_arr is not None:
        if y_arr.shape != g.shape:
            raise SplitError(f"y shape {y_arr.shape} does not match groups shape {g.shape}.")
        _check_classes_can_spread(g, y_arr)
        # sklearn refuses more folds than the largest class has members
        max_folds = min(max_folds, int(np.unique(y_arr, return_counts=True)[1].max()))
    counts = _fold_counts(fractions, max_folds)
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        parts = _deal(g, y_arr, counts, rng)
        mixed = y_arr is None or all(np.unique(y_arr[p]).size >= 2 for p in parts)
        if mixed and all(p.size for p in parts):
            return GroupedSplit(parts[0], parts[1], parts[2], seed)
    raise SplitError(
        f"no grouped split in {max_tries} tries put both classes in train, val and test; with "
        f"{uniq.size} groups the labels are too concentrated. Group by a key that mixes labels "
        "(template family rather than condition) or add groups."
    )


def _check_classes_can_spread(g: np.ndarray, y: np.ndarray) -> None:
    """Fail at once, not after every retry, when no split can put both classes in all three parts."""
    labels = np.unique(y)
    spread = {str(label): np.unique(g[y == label]).size for label in labels}
    if labels.size < 2 or min(spread.values()) < 3:
        raise SplitError(
            f"both classes must reach train, val and test, but the groups holding each class number "
            f"{spread}; each class needs at least 3. Group by a key that mixes labels (template family "
            "rather than condition) or add groups."
        )


MAX_FOLDS = 20  # fractions are matched to 1/20 at best; more folds than groups is impossible


def _fold_counts(fractions: tuple[float, float, float], max_folds: int) -> tuple[int, int, int]:
    """(train, val, test) numbers of folds, each >= 1, out of the fewest folds that best match `fractions`."""
    candidates = []
    for k in range(3, min(max_folds, MAX_FOLDS) + 1):
        val = min(max(1, round(fractions[1] * k)), k - 2)
        test = min(max(1, round(fractions[2] * k)), k - 1 - val)
        candidates.append((k - val - test, val, test))

    def mismatch(counts: tuple[int, int, int]) -> float:
        return round(max(abs(c / sum(counts) - f) for c, f in zip(counts, fractions, strict=True)), 9)

    return min(candidates, key=mismatch)  # the first, so the fewest folds, among equals


def _deal(
    g: np.ndarray, y: np.ndarray | None, counts: tuple[int, int, int], rng: np.random.Generator
) -> list[Int[np.ndarray, " n_part"]]:
    """One shuffled `StratifiedGroupKFold` pass; parts take whole folds (in a shuffled order).

    Without labels every example is one class, so the folds balance size alone.
    """
    k = sum(counts)
    labels = np.zeros(g.size, dtype=np.int64) if y is None else y
    folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(rng.integers(2**31)))
    with warnings.catch_warnings():  # "least populated class < n_splits": judged below, per part
        warnings.simplefilter("ignore", UserWarning)
        try:
            tests = [test for _, test in folds.split(np.zeros(g.size), labels, g)]
        except ValueError as error:  # e.g. labels that are not classes
            raise SplitError(f"cannot split by these labels: {error}") from None
    order = rng.permutation(k)
    bounds = np.cumsum([0, counts[2], counts[1], counts[0]])  # test, val, train
    test, val, train = (
        np.sort(np.concatenate([tests[i] for i in order[lo:hi]])).astype(np.int64)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    )
    return [train, val, test]


def _word_pattern(label_words: Sequence[str]) -> re.Pattern[str]:
    words = [w.strip() for w in label_words if w.strip()]
    if not words:
        raise SplitError("label_words is empty; pass the words that give the label away.")
    # Prefix match at a word start, case-insensitive: "blackmail" also catches "blackmailing".
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\w*", flags=re.IGNORECASE)


def word_filtered(texts: Sequence[str], label_words: Sequence[str]) -> Bool[np.ndarray, " n"]:
    """Mask of texts that contain NONE of `label_words` (matched case-insensitively as word prefixes).

    Prefix matching over-removes ("test" also drops "testament"), which is the safe direction: the
    filtered subset may shrink but never keeps a label word.
    """
    pat = _word_pattern(label_words)
    return np.array([pat.search(t) is None for t in texts], dtype=bool)


def label_word_pattern(label_words: Sequence[str]) -> re.Pattern[str]:
    """The regex that finds label words (and their suffixes) in a text."""
    return _word_pattern(label_words)


def remove_words(texts: Sequence[str], label_words: Sequence[str]) -> list[str]:
    """Texts with every label word (and its suffixes) deleted, for a word-free lexical baseline."""
    pat = _word_pattern(label_words)
    return [re.sub(r"\s{2,}", " ", pat.sub("", t)).strip() for t in texts]

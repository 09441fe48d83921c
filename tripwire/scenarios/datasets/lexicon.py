"""Which words give a label away: words far more common in one class's texts than in the other's.

Computed from the data rather than listed by hand, so every template family's giveaways are caught,
including ones nobody thought to list; a lexical baseline and a word-filtered split read them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z][a-z_']*[a-z]|[a-z]")


def tokens(text: str) -> set[str]:
    return set(_TOKEN.findall(text.lower()))


def giveaway_words(
    positives: Sequence[str], negatives: Sequence[str], min_share: float = 0.02, min_ratio: float = 4.0
) -> tuple[set[str], set[str]]:
    """(words that mark positives, words that mark negatives): present in at least `min_share` of
    one class's texts and at least `min_ratio` times as common there as in the other class."""
    pos = Counter(w for t in positives for w in tokens(t))
    neg = Counter(w for t in negatives for w in tokens(t))
    n_pos, n_neg = max(len(positives), 1), max(len(negatives), 1)

    def marks(mine: Counter[str], n_mine: int, other: Counter[str], n_other: int) -> set[str]:
        return {
            w
            for w, c in mine.items()
            if c / n_mine >= min_share and c / n_mine >= min_ratio * (other[w] + 1) / (n_other + 1)
        }

    return marks(pos, n_pos, neg, n_neg), marks(neg, n_neg, pos, n_pos)

"""Label-permutation nulls that keep pair structure and class balance.

One shuffled-label refit is one draw from a null distribution: a draw that happens to leave 55% of pairs
with their true labels gives a "shuffled" probe that still partly learns the label, and its interval
can exclude 0.5 with no leak at all. So the null is many draws (>= 200), summarised by its mean, its
95th percentile and the permutation p-value of the observed score, and the draws are checked to leave
chance agreement with the true labels on average (`check_permutation_balance`).

Permutations keep the design's structure: within each pair the two labels are swapped with probability
1/2, independently (each pair keeps one of each class; agreement with the truth is 1/2 on average);
transcripts without a partner are permuted within their stratum (all together when no strata).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from jaxtyping import Int
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from tripwire.errors import TripwireError

MIN_PERMUTATIONS = 200


class PermutationInputError(TripwireError, ValueError):
    """Labels, pairs or strata that cannot be permuted as asked."""


class PermutationBalanceError(TripwireError, ValueError):
    """A set of permutations that does not leave chance agreement with the true labels (a biased null)."""


def _blocks(n: int, pair_ids: ArrayLike | None, strata: ArrayLike | None) -> list[np.ndarray]:
    """Index sets permuted independently: each pair of >= 2 members; the remaining transcripts by stratum."""
    blocks: list[np.ndarray] = []
    alone = np.ones(n, dtype=bool)
    if pair_ids is not None:
        p = np.asarray(pair_ids).astype(str)
        if p.size != n:
            raise PermutationInputError(f"{p.size} pair ids for {n} labels; pass one per transcript.")
        _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
        for k in np.flatnonzero(counts >= 2):
            blocks.append(np.flatnonzero(inverse == k))
        alone = counts[inverse] < 2
    s = np.zeros(n, dtype=np.int64) if strata is None else np.unique(np.asarray(strata).astype(str),
                                                                      return_inverse=True)[1]
    if s.size != n:
        raise PermutationInputError(f"{s.size} strata for {n} labels; pass one per transcript.")
    for k in np.unique(s[alone]):
        blocks.append(np.flatnonzero(alone & (s == k)))
    return blocks


def permute_labels(y: ArrayLike, *, pair_ids: ArrayLike | None = None, strata: ArrayLike | None = None,
                   n_perm: int = MIN_PERMUTATIONS, seed: int = 0) -> Int[np.ndarray, "n_perm n"]:
    """`n_perm` label permutations, one per row. Within each pair (members sharing a pair id) the labels
    are permuted uniformly (for two members: swapped with probability 1/2, independently per pair);
    transcripts without a partner are permuted within their stratum. Every row keeps the class counts of
    every pair and stratum."""
    y_arr = np.asarray(y).astype(np.int64)
    if y_arr.ndim != 1:
        raise PermutationInputError(f"labels must be 1-D, got shape {y_arr.shape}.")
    if n_perm < 1:
        raise PermutationInputError(f"n_perm is {n_perm}; ask for at least one permutation.")
    rng = np.random.default_rng(seed)
    out = np.tile(y_arr, (n_perm, 1))
    for idx in _blocks(y_arr.size, pair_ids, strata):
        if idx.size < 2:
            continue
        order = np.argsort(rng.random((n_perm, idx.size)), axis=1)  # a uniform permutation per row
        out[:, idx] = y_arr[idx][order]
    return out


def chance_agreement(y: ArrayLike) -> float:
    """The share of labels an arbitrary relabelling with the same class balance gets right on average,
    p^2 + (1 - p)^2 (1/2 for balanced labels): what a null may leave, and no more."""
    p = float(np.mean(np.asarray(y).astype(np.int64)))
    return p * p + (1.0 - p) ** 2


@dataclass(frozen=True)
class PermutationBalance:
    """Whether a set of permutations leaves chance agreement with the true labels (`ok`), and why not."""

    n_perm: int
    mean_agreement: float
    chance_agreement: float
    tolerance: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_permutation_balance(perms: ArrayLike, y: ArrayLike, *, pair_ids: ArrayLike | None = None,
                              strata: ArrayLike | None = None, min_perm: int = MIN_PERMUTATIONS,
                              z: float = 4.0, floor: float = 0.01) -> PermutationBalance:
    """Flags a permutation set that is too small, changes class counts (per pair or stratum when given),
    or whose mean agreement with `y` departs from `chance_agreement(y)` by more than `z` standard errors
    (at least `floor`). A single draw (55% agreement, say) is flagged: one draw cannot show balance.
    Pairs holding one class, or strata whose class balance differs, cannot be relabelled to chance
    and are flagged through the agreement too."""
    P = np.atleast_2d(np.asarray(perms).astype(np.int64))
    y_arr = np.asarray(y).astype(np.int64)
    if P.shape[1] != y_arr.size:
        raise PermutationInputError(f"permutations have {P.shape[1]} labels each, y has {y_arr.size}.")
    agree = (P == y_arr).mean(axis=1)
    expected = chance_agreement(y_arr)
    se = float(agree.std(ddof=1) / np.sqrt(agree.size)) if agree.size > 1 else 0.0
    tol = max(z * se, floor)
    problems = []
    if P.shape[0] < min_perm:
        problems.append(f"{P.shape[0]} permutation(s) < {min_perm}: too few to describe a null.")
    changed = [idx for idx in _blocks(y_arr.size, pair_ids, strata)
               if np.any(P[:, idx].sum(axis=1) != y_arr[idx].sum())]
    if changed:
        problems.append(f"{len(changed)} pair(s)/strata change their class counts under permutation.")
    if abs(agree.mean() - expected) > tol:
        problems.append(f"mean agreement with the true labels {agree.mean():.3f} vs {expected:.3f} by chance "
                        f"(tolerance {tol:.3f}): a biased null.")
    return PermutationBalance(int(P.shape[0]), float(agree.mean()), expected, tol, problems)


@dataclass(frozen=True)
class PermutationNull:
    """A permutation null of one score: its mean, 95th percentile and the observed score's p-value,
    (1 + #{null >= observed}) / (1 + n_perm), which is never 0."""

    observed: float
    mean: float
    p95: float
    p_value: float
    n_perm: int
    balance: PermutationBalance | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["balance"] = None if self.balance is None else self.balance.to_dict()
        return out


def null_summary(observed: float, null: ArrayLike, balance: PermutationBalance | None = None) -> PermutationNull:
    """Summarise precomputed null scores (one per permutation) against the observed score."""
    v = np.asarray(null, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise PermutationInputError("the null needs at least one finite score per permutation.")
    p = (1.0 + float(np.sum(v >= observed))) / (1.0 + v.size)
    return PermutationNull(float(observed), float(v.mean()), float(np.quantile(v, 0.95)), p, int(v.size), balance)


def balanced_permutations(y: ArrayLike, *, pair_ids: ArrayLike | None = None, strata: ArrayLike | None = None,
                          n_perm: int = MIN_PERMUTATIONS, seed: int = 0
                          ) -> tuple[Int[np.ndarray, "n_perm n"], PermutationBalance]:
    """`permute_labels`, refused (PermutationBalanceError) when the draws fail `check_permutation_balance`."""
    perms = permute_labels(y, pair_ids=pair_ids, strata=strata, n_perm=n_perm, seed=seed)
    balance = check_permutation_balance(perms, y, pair_ids=pair_ids, strata=strata, min_perm=min(n_perm, MIN_PERMUTATIONS))
    if not balance.ok:
        raise PermutationBalanceError("; ".join(balance.problems),
                                      fix="pass pairs or strata that hold both classes, and n_perm >= 200.")
    return perms, balance


def permutation_null(score: Callable[[np.ndarray], float], y: ArrayLike, *, observed: float | None = None,
                     pair_ids: ArrayLike | None = None, strata: ArrayLike | None = None,
                     n_perm: int = MIN_PERMUTATIONS, seed: int = 0) -> PermutationNull:
    """The null of `score(labels)` (e.g. train the probe method on these training labels, return its
    held-out AUROC) over balanced permutations of `y`; `observed` defaults to `score(y)`."""
    perms, balance = balanced_permutations(y, pair_ids=pair_ids, strata=strata, n_perm=n_perm, seed=seed)
    obs = float(score(np.asarray(y).astype(np.int64))) if observed is None else float(observed)
    return null_summary(obs, [score(row) for row in perms], balance)


def auroc_permutation_null(y: ArrayLike, scores: ArrayLike, *, pair_ids: ArrayLike | None = None,
                           strata: ArrayLike | None = None, n_perm: int = 1000, seed: int = 0) -> PermutationNull:
    """The null of a fixed scorer's AUROC on its test labels, permuted with the test side's structure
    (no refit, so cheap): does the observed AUROC exceed what these scores give arbitrary labels?"""
    y_arr = np.asarray(y).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != y_arr.shape or np.unique(y_arr).size < 2:
        raise PermutationInputError("pass one score per label, with both classes among the labels.")
    perms, balance = balanced_permutations(y_arr, pair_ids=pair_ids, strata=strata, n_perm=n_perm, seed=seed)
    ranks = rankdata(s)
    n_pos = int(y_arr.sum())
    denom = n_pos * (y_arr.size - n_pos)  # permutations keep the class counts, so one denominator
    observed = (ranks[y_arr == 1].sum() - n_pos * (n_pos + 1) / 2) / denom
    null = ((perms == 1) @ ranks - n_pos * (n_pos + 1) / 2) / denom
    return null_summary(float(observed), null, balance)

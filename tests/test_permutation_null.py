"""Permutation nulls: pair-preserving permutations leave chance agreement with the true labels on average
(and the balance check flags a set that does not, or a single draw); the p-value carries the +1
correction and is small for a separable problem and not for pure noise."""

from __future__ import annotations

import numpy as np
import pytest

from tripwire.probes.baselines import shuffled_labels
from tripwire.probes.metrics import auroc
from tripwire.probes.permutation import (
    PermutationBalanceError,
    auroc_permutation_null,
    chance_agreement,
    check_permutation_balance,
    null_summary,
    permutation_null,
    permute_labels,
)

N_PAIRS = 40
Y = np.tile([1, 0], N_PAIRS)
PAIRS = np.repeat(np.arange(N_PAIRS), 2)


def _biased(keep: float, n_perm: int = 200, seed: int = 0) -> np.ndarray:
    """Pair-preserving, class-balanced, but each pair keeps its true labels with probability `keep`."""
    first = (np.random.default_rng(seed).random((n_perm, N_PAIRS)) < keep).astype(np.int64)  # true label: 1
    out = np.empty((n_perm, Y.size), dtype=np.int64)
    out[:, 0::2], out[:, 1::2] = first, 1 - first
    return out


def test_pair_permutations_keep_pairs_whole_and_leave_chance_agreement() -> None:
    perms = permute_labels(Y, pair_ids=PAIRS, n_perm=400, seed=0)
    assert perms.shape == (400, Y.size)
    assert np.all(perms[:, 0::2] + perms[:, 1::2] == 1)  # one of each class in every pair, every draw
    assert abs((perms == Y).mean() - 0.5) < 0.02 and chance_agreement(Y) == 0.5
    swapped = (perms[:, 0::2] != Y[0::2]).mean(axis=0)  # each pair swapped about half the time
    assert swapped.min() > 0.35 and swapped.max() < 0.65
    assert check_permutation_balance(perms, Y, pair_ids=PAIRS).ok


def test_balance_check_flags_biased_sets_and_single_draws() -> None:
    assert check_permutation_balance(_biased(0.5), Y, pair_ids=PAIRS).ok  # the construction itself is fair
    biased = check_permutation_balance(_biased(0.6), Y, pair_ids=PAIRS)
    assert not biased.ok and biased.mean_agreement == pytest.approx(0.6, abs=0.02)
    assert any("biased null" in p for p in biased.problems)
    one = _biased(0.5, n_perm=1, seed=0)[0]
    one[: 2 * 22] = Y[: 2 * 22]  # a single draw that leaves 22 of 40 pairs (55%) as they were
    one[2 * 22 :] = 1 - Y[2 * 22 :]
    assert (one == Y).mean() == pytest.approx(0.55)
    assert not check_permutation_balance(one, Y, pair_ids=PAIRS).ok  # one draw describes no null
    assert not check_permutation_balance(np.tile(one, (200, 1)), Y, pair_ids=PAIRS).ok  # nor 200 copies
    assert not check_permutation_balance(shuffled_labels(Y, PAIRS, seed=0), Y, pair_ids=PAIRS).ok
    broken = permute_labels(Y, n_perm=200, seed=0)  # ignores the pairs: class counts per pair change
    assert any("class counts" in p for p in check_permutation_balance(broken, Y, pair_ids=PAIRS).problems)


def test_unpaired_permutations_stay_within_strata_and_one_class_strata_are_flagged() -> None:
    y = np.tile([1, 0, 0, 1], 30)
    strata = np.repeat(np.arange(6), 20)
    perms = permute_labels(y, strata=strata, n_perm=200, seed=1)
    for s in range(6):
        assert np.all(perms[:, strata == s].sum(axis=1) == y[strata == s].sum())
    assert check_permutation_balance(perms, y, strata=strata).ok
    one_class = y[np.argsort(y, kind="stable")]  # strata of one label each cannot be relabelled
    stuck = permute_labels(one_class, strata=strata, n_perm=200, seed=1)
    assert not check_permutation_balance(stuck, one_class, strata=strata).ok
    with pytest.raises(PermutationBalanceError):
        permutation_null(lambda labels: 0.5, one_class, strata=strata)


def test_p_value_has_the_plus_one_correction() -> None:
    assert null_summary(0.9, np.full(199, 0.1)).p_value == pytest.approx(1 / 200)
    assert null_summary(0.5, np.full(9, 0.5)).p_value == 1.0  # ties count against the observed score
    s = null_summary(0.7, np.linspace(0.0, 1.0, 101))
    assert s.p_value == pytest.approx(32 / 102) and s.mean == pytest.approx(0.5)
    assert s.p95 == pytest.approx(0.95)


def _refit_world(signal: float, seed: int, n_pairs: int = 150) -> tuple[np.ndarray, ...]:
    """Paired training and test rows with the label `signal` along one of 8 noise dimensions. With many
    pairs a permutation's chance agreement (and so the signal a permuted refit still finds) stays small."""
    rng = np.random.default_rng(seed)
    y, pairs = np.tile([1, 0], n_pairs), np.repeat(np.arange(n_pairs), 2)
    X, X_te = rng.normal(size=(y.size, 8)), rng.normal(size=(y.size, 8))
    X[:, 0] += signal * y
    X_te[:, 0] += signal * y
    return y, pairs, X, X_te


@pytest.mark.parametrize("signal, small", [(1.5, True), (0.0, False)])
def test_refit_null_p_value_is_small_only_when_the_label_is_there(signal: float, small: bool) -> None:
    y, pairs, X, X_te = _refit_world(signal, seed=2)

    def refit(labels: np.ndarray) -> float:  # train on (permuted) training labels, score held-out truth
        direction = X[labels == 1].mean(axis=0) - X[labels == 0].mean(axis=0)  # a difference-of-means probe
        return auroc(y, X_te @ direction)

    null = permutation_null(refit, y, pair_ids=pairs, n_perm=200, seed=0)
    assert null.n_perm == 200 and null.balance is not None and null.balance.ok
    assert abs(null.mean - 0.5) < 0.05
    if small:
        assert null.observed > 0.8 and null.p95 < null.observed and null.p_value == pytest.approx(1 / 201)
    else:
        assert null.p_value > 0.1


@pytest.mark.parametrize("signal, small", [(2.0, True), (0.0, False)])
def test_score_null_p_value_is_small_only_when_the_label_is_there(signal: float, small: bool) -> None:
    rng = np.random.default_rng(4)
    scores = rng.normal(size=Y.size) + signal * Y
    null = auroc_permutation_null(Y, scores, pair_ids=PAIRS, n_perm=1000, seed=0)
    assert null.observed == pytest.approx(auroc(Y, scores)) and abs(null.mean - 0.5) < 0.02
    assert (null.p_value < 0.01) if small else (null.p_value > 0.1)

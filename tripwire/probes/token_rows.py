"""Per-transcript token rows (one `[tokens, d_model]` array each): stacked for a fit, scored back per
transcript, reduced to the deployed streaming statistic, and refit many times on permuted labels for a
null (`PermutedRefits`). What a fold, a selection and a null all do with rows, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
from jaxtyping import Float
from sklearn.base import clone

from tripwire.probes.estimators import DiffMeanProbe, LDAProbe
from tripwire.probes.estimators.mean_difference import shrunk_within
from tripwire.probes.scoring import decision_scores, statistic_values
from tripwire.probes.sweep import fit_estimator

Rows = Sequence[Float[np.ndarray, "tok d"]]
STREAMING = "streaming"


def stack_rows(rows: Rows, idx: np.ndarray, *, max_tokens: int | None = 48, seed: int = 0
               ) -> tuple[Float[np.ndarray, "m d"], np.ndarray]:
    """The token rows of transcripts `idx` stacked (at most `max_tokens` per transcript, evenly spread,
    so long ones do not dominate) and, per row, the transcript it came from."""
    rng = np.random.default_rng(seed)
    X, owner = [], []
    for i in idx.tolist():
        r = np.asarray(rows[i])
        if max_tokens and len(r) > max_tokens:
            r = r[np.sort(rng.choice(len(r), max_tokens, replace=False))]
        X.append(r)
        owner.append(np.full(len(r), i, dtype=np.int64))
    return np.concatenate(X).astype(np.float64), np.concatenate(owner)


def fit_rows(prototype: Any, rows: Rows, labels: np.ndarray, idx: np.ndarray, *,
             pair_ids: np.ndarray | None = None, max_tokens: int | None = 48, seed: int = 0) -> Any:
    """A `clone` of `prototype` fit on the token rows of transcripts `idx` (`stack_rows`), each
    transcript's label on all its rows."""
    X, owner = stack_rows(rows, idx, max_tokens=max_tokens, seed=seed)
    return fit_estimator(clone(prototype), X, labels[owner],
                         None if pair_ids is None else np.asarray(pair_ids)[owner].astype(str))


def score_rows(est: Any, rows: Rows, idx: np.ndarray) -> list[Float[np.ndarray, " tok"]]:
    return [decision_scores(est, rows[i]) for i in idx.tolist()]


def stream(seqs: Sequence[np.ndarray], window: int) -> Float[np.ndarray, " n"]:
    """The deployed statistic per transcript: the maximum running mean over `window` tokens."""
    return statistic_values(seqs, STREAMING, window=window)


class PermutedRefits:
    """One method refit many times on the same training rows under different labels (a permutation null).

    The rows are stacked once (`stack_rows`, so the same rows `fit_rows` would use); for `DiffMeanProbe`
    and `LDAProbe` they are centred (no direction changes; the Gram matrix keeps its precision) and each
    refit's direction comes from sufficient statistics (`class_direction`): a null of 200 refits then costs
    200 products with the rows, not 200 passes over a d x d covariance. Scores along it rank transcripts as
    the refit probe's do (its calibration is a positive scale and an offset). Other methods are refit in
    full on the stacked rows. Scored transcripts are converted to float64 once, not once per refit."""

    def __init__(self, prototype: Any, rows: Rows, train: np.ndarray, *, max_tokens: int | None = 48,
                 seed: int = 0) -> None:
        self.prototype, self.rows = prototype, rows
        self.X, self.owner = stack_rows(rows, train, max_tokens=max_tokens, seed=seed)
        closed_form = isinstance(prototype, DiffMeanProbe | LDAProbe)
        self._centred = self.X - self.X.mean(axis=0) if closed_form else self.X
        self._gram = self._centred.T @ self._centred if closed_form else None
        self._scored: dict[int, np.ndarray] = {}

    def sequences(self, labels: np.ndarray, idx: np.ndarray, pair_ids: np.ndarray | None = None
                  ) -> list[Float[np.ndarray, " tok"]]:
        """Token scores of transcripts `idx` under the method refit on per-transcript `labels` (along the
        closed-form direction, or from a full refit); ValueError when the labels give no direction."""
        w = class_direction(self.prototype, self._centred, labels[self.owner], self._gram)
        if w is None:
            p_rows = None if pair_ids is None else np.asarray(pair_ids)[self.owner].astype(str)
            est = fit_estimator(clone(self.prototype), self.X, labels[self.owner], p_rows)
            return score_rows(est, self.rows, idx)
        if not np.any(w):
            raise ValueError("no direction separates the classes")
        for i in idx.tolist():
            if i not in self._scored:
                self._scored[i] = np.asarray(self.rows[i], dtype=np.float64)
        return [self._scored[i] @ w for i in idx.tolist()]


def class_direction(proto: Any, X: Float[np.ndarray, "m d"], y: np.ndarray, gram: np.ndarray | None
                    ) -> Float[np.ndarray, " d"] | None:
    """The direction `DiffMeanProbe`/`LDAProbe` would fit on centred rows `X` and labels `y`, from sufficient
    statistics (the label-free `gram` = X^T X, class sums, and Ledoit-Wolf's fourth moment via
    `shrunk_within`), so a permuted refit costs O(m d + d^3) instead of a pass over a d x d covariance;
    None for any other method. Both probes' calibration keeps the sign that separates the class means,
    which this direction already has, so scores rank as the fitted probe's do."""
    if gram is None or not isinstance(proto, DiffMeanProbe | LDAProbe):
        return None
    y1 = np.asarray(y) == 1
    n1, n0 = int(y1.sum()), int((~y1).sum())
    if not n1 or not n0:
        raise ValueError("one class only")
    mu1, mu0 = X[y1].sum(axis=0) / n1, X[~y1].sum(axis=0) / n0
    if isinstance(proto, DiffMeanProbe):
        return mu1 - mu0
    scatter = gram - n1 * np.outer(mu1, mu1) - n0 * np.outer(mu0, mu0)
    centred_sq = np.einsum("ij,ij->i", X, X) - 2 * np.where(y1, X @ mu1, X @ mu0) + np.where(y1, mu1 @ mu1, mu0 @ mu0)
    covariance, _ = shrunk_within(scatter, float((centred_sq**2).sum()), X.shape[0], proto.shrinkage)
    return np.asarray(scipy.linalg.solve(covariance, mu1 - mu0, assume_a="pos"))

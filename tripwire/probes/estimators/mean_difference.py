"""Probes built from class means: the cheap, hard-to-overfit baselines of the probing literature."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import torch
from jaxtyping import Float
from numpy.typing import ArrayLike
from sklearn.covariance import empirical_covariance, ledoit_wolf, shrunk_covariance

from tripwire.probes.estimators._base import LinearProbe
from tripwire.probes.estimators._chunks import ChunkSource, iter_rows


def _reject_fit_params(probe: LinearProbe, fit_params: dict[str, Any]) -> None:
    if fit_params:
        raise TypeError(f"{type(probe).__name__}.fit takes no fit parameters, got {sorted(fit_params)}.")


class DiffMeanProbe(LinearProbe):
    """Direction = mean(positive) - mean(negative); threshold from a 1-D logistic fit on projections."""

    method_name = "diffmean"

    def fit(
        self, X: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor, **fit_params: Any
    ) -> DiffMeanProbe:
        _reject_fit_params(self, fit_params)
        X64, y01 = self._validate_fit_data(X, y)
        self._set_from_direction(X64[y01 == 1].mean(axis=0) - X64[y01 == 0].mean(axis=0), X64, y01)
        return self

    def fit_chunks(self, chunks: ChunkSource, **fit_params: Any) -> DiffMeanProbe:
        """Two passes: class means (with the standardisation moments), then the calibration projections."""
        _reject_fit_params(self, fit_params)
        means, n_rows = self._scan_fit_chunks(chunks)
        self._set_from_direction_chunks(means[1] - means[0], chunks, n_rows)
        return self


class LDAProbe(LinearProbe):
    """Fisher/LDA direction ``w = Sigma^-1 (mu1 - mu0)`` with a shrunk within-class covariance.

    Residual caches often have fewer rows than dimensions, where the plain covariance is singular;
    ``shrinkage="ledoit_wolf"`` picks the shrinkage towards ``trace/d * I`` analytically, a float in
    (0, 1] fixes it. The chosen value is kept in ``shrinkage_``.
    """

    method_name = "lda"

    def __init__(self, shrinkage: str | float = "ledoit_wolf") -> None:
        self.shrinkage = shrinkage

    def fit(self, X: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor, **fit_params: Any) -> LDAProbe:
        _reject_fit_params(self, fit_params)
        self._check_shrinkage()
        X64, y01 = self._validate_fit_data(X, y)
        mu1, mu0 = X64[y01 == 1].mean(axis=0), X64[y01 == 0].mean(axis=0)
        within = X64 - np.where(y01[:, None] == 1, mu1, mu0)
        if self.shrinkage == "ledoit_wolf":
            covariance, shrinkage = ledoit_wolf(within, assume_centered=True)
        else:
            shrinkage = float(self.shrinkage)
            covariance = shrunk_covariance(empirical_covariance(within, assume_centered=True), shrinkage)
        self.shrinkage_ = float(shrinkage)
        weights = scipy.linalg.solve(covariance, mu1 - mu0, assume_a="pos")
        self._set_from_direction(weights, X64, y01)
        return self

    def fit_chunks(self, chunks: ChunkSource, **fit_params: Any) -> LDAProbe:
        """Three passes: class means, the within-class scatter (d x d), the calibration projections.

        Ledoit-Wolf needs only the scatter ``W^T W`` and the sum of ``||w_i||^4`` over the class-centred
        rows ``w_i`` (see ``shrunk_within``), so the streamed shrinkage is scikit-learn's, not an
        approximation of it.
        """
        _reject_fit_params(self, fit_params)
        self._check_shrinkage()
        means, n_rows = self._scan_fit_chunks(chunks)
        d = self.n_features_in_
        scatter, fourth = np.zeros((d, d)), 0.0
        for X, y01 in iter_rows(chunks, self.classes_[1], n_rows):
            within = X - means[y01.astype(np.intp)]
            scatter += within.T @ within
            fourth += float((np.einsum("ij,ij->i", within, within) ** 2).sum())
        covariance, self.shrinkage_ = shrunk_within(scatter, fourth, n_rows, self.shrinkage)
        weights = scipy.linalg.solve(covariance, means[1] - means[0], assume_a="pos")
        self._set_from_direction_chunks(weights, chunks, n_rows)
        return self

    def _check_shrinkage(self) -> None:
        if self.shrinkage == "ledoit_wolf" or (isinstance(self.shrinkage, int | float) and 0 < self.shrinkage <= 1):
            return
        raise ValueError(
            f"shrinkage={self.shrinkage!r} is invalid; use 'ledoit_wolf' or a float in (0, 1] "
            "(0 would leave the covariance singular whenever rows < dimensions)."
        )


def shrunk_within(
    scatter: Float[np.ndarray, "d d"], fourth: float, n: int, shrinkage: str | float
) -> tuple[Float[np.ndarray, "d d"], float]:
    """``(1 - s) * scatter / n + s * mu * I`` (``mu`` = mean eigenvalue), as scikit-learn shrinks.

    With ``shrinkage="ledoit_wolf"``, ``s`` is ``sklearn.covariance.ledoit_wolf_shrinkage`` of the
    centred rows, rewritten in sums: its ``beta_ = sum((X**2).T @ X**2)`` is ``fourth`` =
    ``sum_i ||x_i||^4``, and its ``delta_`` is ``||scatter||_F^2 / n^2``.
    """
    d = len(scatter)
    emp_cov = scatter / n
    trace = float(np.trace(emp_cov))
    mu = trace / d
    if shrinkage != "ledoit_wolf":
        s = float(shrinkage)
    elif d == 1:
        s = 0.0  # scikit-learn's special case: nothing to shrink towards
    else:
        delta_ = float(np.vdot(scatter, scatter)) / n**2
        beta = (fourth / n - delta_) / (d * n)
        delta = (delta_ - 2.0 * mu * trace + d * mu**2) / d
        beta = min(beta, delta)
        s = 0.0 if beta == 0 else beta / delta
    covariance = (1.0 - s) * emp_cov
    covariance.flat[:: d + 1] += s * mu
    return covariance, s

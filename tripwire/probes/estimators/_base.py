"""Shared scikit-learn plumbing for the binary linear probes.

Every probe ends up as ``decision(x) = x @ coef_ + bias_`` in the RAW residual space, so the same fitted
object scores cached activations and steers a live model along ``direction_`` (unit norm).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from jaxtyping import Float
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils import Tags
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from tripwire.errors import TripwireError
from tripwire.probes.estimators._chunks import (
    ChunkSource,
    ChunkSourceError,
    ClassMoments,
    float64_chunks,
    iter_rows,
)


class NotBinaryError(TripwireError, ValueError):
    """Probes separate exactly two classes (e.g. "coercion planned" vs not)."""


def as_numpy(X: Any) -> Any:
    """Torch tensors (any device) become numpy so sklearn validation sees one array type."""
    if isinstance(X, torch.Tensor):
        X = X.detach().to("cpu")
        return (X.float() if X.dtype == torch.bfloat16 else X).numpy()  # numpy has no bfloat16
    return X


class LinearProbe(ClassifierMixin, BaseEstimator):
    """Base for probes whose score is an affine function of the raw activation.

    Subclasses implement ``fit`` and call ``_set_linear`` / ``_set_from_direction``; this class validates
    input, encodes the two labels as 0/1 (``classes_[1]`` is the positive class), records the training
    feature mean/std (``mean_`` / ``scale_``) and derives probabilities and labels from ``coef_``/``bias_``.
    """

    method_name: ClassVar[str] = ""

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        assert tags.classifier_tags is not None
        tags.classifier_tags.multi_class = False
        return tags

    def _validate_fit_data(
        self, X: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor
    ) -> tuple[Float[np.ndarray, "n d_model"], np.ndarray]:
        """Return float64 X and y encoded as 0 (classes_[0]) / 1 (classes_[1], the positive class)."""
        X_arr, y_arr = validate_data(
            self, as_numpy(X), as_numpy(y), dtype=[np.float64, np.float32], y_numeric=False
        )
        check_classification_targets(y_arr)
        classes, y01 = np.unique(y_arr, return_inverse=True)
        self._check_binary(classes, y_arr)
        self.classes_ = classes
        X64 = np.asarray(X_arr, dtype=np.float64)
        self.mean_ = X64.mean(axis=0)
        scale = X64.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return X64, y01.astype(np.float64)

    def _check_binary(self, classes: np.ndarray, y: np.ndarray) -> None:
        if len(classes) != 2:
            raise NotBinaryError(
                f"Only binary classification is supported: y has {len(classes)} class(es) "
                f"({type_of_target(y)} target: {classes[:5].tolist()}). {type(self).__name__} needs "
                "exactly two label values, e.g. 1 for concept present and 0 for absent; train one probe "
                "per concept."
            )

    def fit_chunks(self, chunks: ChunkSource, **fit_params: Any) -> LinearProbe:
        """Fit from a re-iterable stream of ``(X, y)`` chunks without holding all rows (see ``_chunks``).

        Gives the same fitted probe as ``fit`` on the concatenated chunks, up to float rounding.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement fit_chunks.")

    def _scan_fit_chunks(
        self, chunks: ChunkSource
    ) -> tuple[Float[np.ndarray, "2 d_model"], int]:
        """First streaming pass: what ``_validate_fit_data`` records, plus the two class means.

        Returns the means in ``classes_`` order (negative, positive) and the row count.
        """
        moments = ClassMoments()
        for X, y in float64_chunks(chunks):
            # the first chunk sets n_features_in_, later ones are checked against it (as in predict)
            X_arr, y_arr = validate_data(self, X, y, dtype=np.float64, reset=not moments.count, y_numeric=False)
            check_classification_targets(y_arr)
            moments.add(X_arr, y_arr)
        if not moments.count:
            raise ChunkSourceError("the chunk source yielded no rows; check the record ids and positions.")
        classes = np.unique(np.array(list(moments.count)))
        self._check_binary(classes, classes)
        self.classes_ = classes
        self.mean_, scale = moments.pooled()
        self.scale_ = np.where(scale > 0, scale, 1.0)
        means = np.stack([moments.mean[c.item()] for c in classes])
        return means, moments.n_rows

    def _set_linear(
        self, coef: Float[np.ndarray, " d_model"], bias: float, direction: Float[np.ndarray, " d_model"]
    ) -> None:
        self.coef_ = np.asarray(coef, dtype=np.float64).reshape(1, -1)
        self.intercept_ = np.array([bias], dtype=np.float64)
        self.bias_ = float(bias)
        self.direction_ = np.asarray(direction, dtype=np.float64)

    def _unit(self, direction: Float[np.ndarray, " d_model"]) -> Float[np.ndarray, " d_model"]:
        norm = float(np.linalg.norm(direction))
        if not norm > 0:
            raise ValueError(
                f"{type(self).__name__} found no direction separating the classes (zero vector): the two "
                "classes have identical statistics. Check that the labels match the activations."
            )
        return direction / norm

    def _set_from_direction(
        self, direction: Float[np.ndarray, " d_model"], X: Float[np.ndarray, "n d_model"], y01: np.ndarray
    ) -> None:
        """Unit ``direction`` plus a 1-D logistic fit on the projections (slope, offset)."""
        unit = self._unit(direction)
        slope, offset = calibrate_projection(X @ unit, y01)
        self._set_linear(slope * unit, offset, unit)

    def _set_from_direction_chunks(
        self, direction: Float[np.ndarray, " d_model"], chunks: ChunkSource, n_rows: int
    ) -> None:
        """``_set_from_direction`` with the projections (one float per row) gathered in a pass."""
        unit = self._unit(direction)
        parts = [(X @ unit, y01) for X, y01 in iter_rows(chunks, self.classes_[1], n_rows)]
        projection, y01 = (np.concatenate(column) for column in zip(*parts, strict=True))
        slope, offset = calibrate_projection(projection, y01)
        self._set_linear(slope * unit, offset, unit)

    def decision_function(self, X: ArrayLike | torch.Tensor) -> Float[np.ndarray, " n"]:
        """Log-odds of the positive class (``classes_[1]``) for raw activations."""
        check_is_fitted(self, "coef_")
        X_arr = validate_data(self, as_numpy(X), reset=False, dtype=[np.float64, np.float32])
        return np.asarray(X_arr, dtype=np.float64) @ self.coef_[0] + self.bias_

    def predict_proba(self, X: ArrayLike | torch.Tensor) -> Float[np.ndarray, "n 2"]:
        p1 = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.stack([1.0 - p1, p1], axis=1)

    def predict(self, X: ArrayLike | torch.Tensor) -> np.ndarray:
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]


def calibrate_projection(
    projection: Float[np.ndarray, " n"], y01: Float[np.ndarray, " n"]
) -> tuple[float, float]:
    """Fit ``sigmoid(slope * p + offset)`` so direction-only probes give calibrated-ish probabilities.

    A 1-D L2 logistic regression on the standardised projection (C=1: negligible for thousands of rows,
    but keeps the slope finite when the classes are perfectly separated).
    """
    spread = float(projection.std()) or 1.0
    center = float(projection.mean())
    z = ((projection - center) / spread).reshape(-1, 1)
    fit = LogisticRegression(C=1.0).fit(z, y01.astype(int))
    slope = float(fit.coef_[0, 0]) / spread
    return slope, float(fit.intercept_[0]) - slope * center

"""Cross-subset generalisation: train on one scenario kind, test on the others.

A probe for "planning coercion" that only works on the kind it was trained on (blackmail) has likely
learnt that scenario's wording; transfer to leaking and lethal scenarios is the stronger evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import clone

from tripwire.errors import TripwireError
from tripwire.probes.metrics import auroc
from tripwire.probes.scoring import decision_scores
from tripwire.probes.sweep import fit_estimator


class GeneralisationError(TripwireError, ValueError):
    """Subsets that cannot be trained or tested on."""


def generalisation_matrix(
    X: ArrayLike,
    y: ArrayLike,
    subsets: Mapping[str, ArrayLike],
    prototype: Any,
    *,
    pair_ids: ArrayLike | None = None,
) -> dict[str, dict[str, float | None]]:
    """`result[train][test]` = AUROC of a probe fit on subset `train`, scored on subset `test`.

    Off-diagonal only: the diagonal would be an in-sample score. Examples in both subsets are dropped
    from the test side so no training example is ever scored. A test subset with one class left gives
    None (AUROC undefined) rather than an error, so one thin cell does not sink the matrix.
    """
    X_arr = np.asarray(X, dtype=np.float64)
    y_arr = np.asarray(y)
    n = X_arr.shape[0]
    if y_arr.shape[0] != n:
        raise GeneralisationError(f"{y_arr.shape[0]} labels for {n} rows of X; pass one label per row.")
    masks: dict[str, np.ndarray] = {}
    for name, m in subsets.items():
        mask = np.asarray(m, dtype=bool)
        if mask.shape != (n,):
            raise GeneralisationError(f"subset {name!r} mask has shape {mask.shape}; expected ({n},).")
        if np.unique(y_arr[mask]).size < 2:
            raise GeneralisationError(
                f"subset {name!r} has {int(mask.sum())} examples and only one class; every subset needs "
                "positives and negatives to train on."
            )
        masks[name] = mask
    if len(masks) < 2:
        raise GeneralisationError("need at least two subsets to test generalisation between them.")
    pairs = None if pair_ids is None else np.asarray(pair_ids)
    out: dict[str, dict[str, float | None]] = {}
    for train_name, train_mask in masks.items():
        est = clone(prototype)
        fit_estimator(est, X_arr[train_mask], y_arr[train_mask], None if pairs is None else pairs[train_mask])
        out[train_name] = {}
        for test_name, test_mask in masks.items():
            if test_name == train_name:
                continue
            held = test_mask & ~train_mask
            if np.unique(y_arr[held]).size < 2:
                out[train_name][test_name] = None
                continue
            out[train_name][test_name] = auroc(y_arr[held], decision_scores(est, X_arr[held]))
    return out

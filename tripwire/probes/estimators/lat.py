"""Linear Artificial Tomography (Zou et al., Representation Engineering): PCA of paired differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
import torch
from jaxtyping import Float
from numpy.typing import ArrayLike
from sklearn.utils.extmath import randomized_svd

from tripwire.errors import TripwireError
from tripwire.probes.estimators._base import LinearProbe, as_numpy
from tripwire.probes.estimators._chunks import ChunkSource, iter_rows


class PairingError(TripwireError, ValueError):
    """``pair_ids`` do not describe contrast pairs (each id needs rows of both classes)."""


class LATProbe(LinearProbe):
    """Top principal direction of the differences between paired positive and negative activations.

    ``fit(X, y, pair_ids=ids)``: rows sharing an id form one contrast pair (e.g. the same scenario
    rendered with and without the concept); each id needs at least one row of each class, and its
    difference is mean(positive rows) - mean(negative rows). The direction is the top right singular
    vector of the UNCENTRED difference matrix, which equals RepE's PCA on randomly sign-flipped
    differences without the randomness; its sign is fixed so the positive class scores higher.

    Without ``pair_ids`` (e.g. inside ``check_estimator``) rows are paired at random within classes,
    seeded by ``random_state``: RepE's unpaired recipe, noisier because pairs share no context.
    Cross-validate paired data with ``GroupKFold`` on the pair ids so folds never split a pair.
    """

    method_name = "lat"

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(
        self,
        X: ArrayLike | torch.Tensor,
        y: ArrayLike | torch.Tensor,
        pair_ids: ArrayLike | torch.Tensor | None = None,
        **fit_params: Any,
    ) -> LATProbe:
        if fit_params:
            raise TypeError(f"LATProbe.fit takes only pair_ids, got {sorted(fit_params)}.")
        X64, y01 = self._validate_fit_data(X, y)
        if pair_ids is None:
            differences = self._random_pair_differences(X64, y01)
        else:
            differences = _paired_differences(X64, y01, np.asarray(as_numpy(pair_ids)))
        self._set_from_direction(_top_direction(differences), X64, y01)
        return self

    def fit_chunks(
        self,
        chunks: ChunkSource,
        pair_ids: ArrayLike | torch.Tensor | None = None,
        **fit_params: Any,
    ) -> LATProbe:
        """Three passes: moments, per-(pair, class) row sums, calibration projections.

        Needs ``pair_ids``, one per streamed row in chunk order. It holds pairs x 2 x d_model sums: the
        size of the difference matrix the in-memory fit decomposes, far smaller than token rows when
        transcripts have many tokens. Random pairing (no ``pair_ids``) draws rows from anywhere in the
        data, which needs all rows at once, so it is refused rather than approximated.
        """
        if fit_params:
            raise TypeError(f"LATProbe.fit_chunks takes only pair_ids, got {sorted(fit_params)}.")
        if pair_ids is None:
            raise PairingError(
                "LATProbe.fit_chunks needs pair_ids (one per streamed row, in chunk order): without them "
                "LAT pairs rows at random across the whole data set, which needs every row in memory. Pass "
                "pair ids (e.g. StoreChunks.per_row(pair id per record)), or use fit(X, y) in memory."
            )
        _, n_rows = self._scan_fit_chunks(chunks)
        ids, inverse = _pair_index(np.asarray(as_numpy(pair_ids)), n_rows)
        sums, counts = np.zeros((2 * len(ids), self.n_features_in_)), np.zeros(2 * len(ids))
        start = 0
        for X, y01 in iter_rows(chunks, self.classes_[1], n_rows):
            part_sums, part_counts = _slot_sums(X, inverse[start : start + len(X)] * 2 + y01, len(counts))
            sums += part_sums
            counts += part_counts
            start += len(X)
        differences = _differences(ids, sums, counts)
        self._set_from_direction_chunks(_top_direction(differences), chunks, n_rows)
        return self

    def _random_pair_differences(
        self, X: Float[np.ndarray, "n d"], y01: np.ndarray
    ) -> Float[np.ndarray, "pairs d"]:
        rng = np.random.default_rng(self.random_state)
        positive = rng.permutation(np.flatnonzero(y01 == 1))
        negative = rng.permutation(np.flatnonzero(y01 == 0))
        n_pairs = min(len(positive), len(negative))
        return X[positive[:n_pairs]] - X[negative[:n_pairs]]


def _top_direction(differences: Float[np.ndarray, "pairs d"]) -> Float[np.ndarray, " d"]:
    """Top right singular vector, signed so the positive class scores higher."""
    # randomized SVD: only the top vector is needed, and a full SVD of pairs x d_model is slow
    _, _, vt = randomized_svd(differences, n_components=1, n_iter=10, random_state=0)
    return vt[0] if vt[0] @ differences.mean(axis=0) >= 0 else -vt[0]


def _pair_index(pair_ids: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    if pair_ids.shape != (n_rows,):
        raise PairingError(
            f"pair_ids has shape {pair_ids.shape} but X has {n_rows} rows; pass one pair id per row."
        )
    ids, inverse = np.unique(pair_ids, return_inverse=True)
    return ids, inverse


def _slot_sums(
    X: Float[np.ndarray, "n d"], slot: np.ndarray, n_slots: int
) -> tuple[Float[np.ndarray, "slots d"], Float[np.ndarray, " slots"]]:
    """Row sums and counts per slot (slot = 2 * pair + class), by a sparse membership product."""
    slot = slot.astype(np.intp)
    membership = scipy.sparse.csr_matrix((np.ones(len(X)), (slot, np.arange(len(X)))), shape=(n_slots, len(X)))
    return membership @ X, np.bincount(slot, minlength=n_slots).astype(np.float64)


def _differences(
    ids: np.ndarray, sums: Float[np.ndarray, "slots d"], counts: Float[np.ndarray, " slots"]
) -> Float[np.ndarray, "pairs d"]:
    """mean(positive rows) - mean(negative rows) per pair; every pair needs rows of both classes."""
    counts = counts.reshape(len(ids), 2)
    incomplete = ids[(counts == 0).any(axis=1)]
    if len(incomplete):
        raise PairingError(
            f"{len(incomplete)} of {len(ids)} pair ids lack a row of one class (e.g. "
            f"{incomplete[:3].tolist()}); every pair needs a positive and a negative row. When "
            "cross-validating, split with GroupKFold(groups=pair_ids) so folds keep pairs whole."
        )
    means = sums.reshape(len(ids), 2, -1) / counts[:, :, None]
    return means[:, 1] - means[:, 0]


def _paired_differences(
    X: Float[np.ndarray, "n d"], y01: np.ndarray, pair_ids: np.ndarray
) -> Float[np.ndarray, "pairs d"]:
    ids, inverse = _pair_index(pair_ids, len(X))
    sums, counts = _slot_sums(X, inverse * 2 + y01, 2 * len(ids))
    return _differences(ids, sums, counts)

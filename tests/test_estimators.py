"""Probe estimators: sklearn contract, planted-direction recovery, sklearn objective parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import check_estimator

from tripwire.probes.estimators import (
    PROBE_METHODS,
    DiffMeanProbe,
    LATProbe,
    LDAProbe,
    LogisticProbe,
    NotBinaryError,
    PairingError,
    l2_logistic_objective,
)

ALL_PROBES = [LogisticProbe(), DiffMeanProbe(), LDAProbe(), LATProbe()]


def planted(
    n: int, d: int, seed: int, separation: float = 1.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of rows sharing a random context, ``separation`` apart along a planted unit direction."""
    rng = np.random.default_rng(seed)
    # equal-magnitude entries: standardisation rescales every feature alike, so LogisticProbe's
    # regularised optimum (a standardised mean difference) points along it too
    direction = rng.choice([-1.0, 1.0], size=d) / np.sqrt(d)
    context = 0.3 * rng.standard_normal((n // 2, d)) + 3.0  # non-zero mean: raw space != standardised space
    noise = 0.3 * rng.standard_normal((n // 2, 2, d))
    rows = context[:, None, :] + noise + np.array([-0.5, 0.5])[None, :, None] * separation * direction
    X = rows.reshape(n, d)
    y = np.tile([0, 1], n // 2)
    pair_ids = np.repeat(np.arange(n // 2), 2)
    return X, y, pair_ids, direction


@pytest.mark.parametrize("probe", ALL_PROBES, ids=lambda p: type(p).__name__)
def test_sklearn_estimator_contract(probe: object) -> None:
    # Binary-only is declared in the tags (classifier_tags.multi_class=False), so sklearn runs its
    # "raises on multiclass" check instead of the multiclass checks: no check is expected to fail.
    check_estimator(probe, expected_failed_checks={}, on_skip=None)


@pytest.mark.parametrize("d", [64, 576])
@pytest.mark.parametrize("method", sorted(PROBE_METHODS))
def test_planted_direction_recovered(method: str, d: int) -> None:
    X, y, pair_ids, direction = planted(n=4000, d=d, seed=d, separation=3.0)
    # nearly separable data: LogisticProbe needs firm L2 to stay on the mean-difference direction
    # rather than chase a max-margin direction fitted to the noise
    probe = PROBE_METHODS[method](C=1e-3) if method == "lr" else PROBE_METHODS[method]()
    probe.fit(X, y, **({"pair_ids": pair_ids} if method == "lat" else {}))
    assert np.linalg.norm(probe.direction_) == pytest.approx(1.0)
    assert probe.direction_ @ direction > 0.99
    # raw-space affine form and probabilities agree with decision_function
    scores = probe.decision_function(X)
    np.testing.assert_allclose(scores, X @ probe.coef_[0] + probe.bias_, rtol=1e-10, atol=1e-8)
    assert probe.score(X, y) > 0.95
    proba = probe.predict_proba(X)[:, 1]
    assert 0.2 < proba.mean() < 0.8  # calibrated-ish, not saturated at one class
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-scores)))


def test_torch_inputs_and_string_labels() -> None:
    X, y, pair_ids, direction = planted(n=600, d=32, seed=1)
    labels = np.where(y == 1, "coercion", "benign")
    probe = DiffMeanProbe().fit(torch.as_tensor(X, dtype=torch.float32), labels)
    assert list(probe.classes_) == ["benign", "coercion"]
    assert probe.direction_ @ direction > 0.99  # positive class (sorted last) scores higher
    assert probe.predict(torch.as_tensor(X[:4]))[1] == "coercion"
    lat = LATProbe().fit(torch.as_tensor(X), torch.as_tensor(y), pair_ids=torch.as_tensor(pair_ids))
    assert lat.direction_ @ direction > 0.99


@pytest.mark.parametrize("dtype", ["float64", "float32", torch.float32])
def test_logistic_matches_sklearn_objective(dtype: str | torch.dtype) -> None:
    rng = np.random.default_rng(0)
    n, d, C = 1500, 40, 0.05
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 4, d) + rng.uniform(-5, 5, d)
    y = (X[:, :3].sum(axis=1) + 2 * rng.standard_normal(n) > X[:, :3].sum(axis=1).mean()).astype(int)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    reference = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(Z, y)
    probe = LogisticProbe(C=C, tol=1e-8, dtype=dtype).fit(X, y)  # raw X: standardises internally
    ours = l2_logistic_objective(probe.decision_function(X), y, probe.coef_[0] * probe.scale_, C)
    theirs = l2_logistic_objective(reference.decision_function(Z), y, reference.coef_[0], C)
    assert abs(ours - theirs) <= 1e-6 * theirs
    np.testing.assert_allclose(probe.coef_[0] * probe.scale_, reference.coef_[0], rtol=1e-3, atol=1e-4)


def test_logistic_warns_when_not_converged() -> None:
    X, y, _, _ = planted(n=400, d=30, seed=2, separation=0.3)
    with pytest.warns(Warning, match="stopped after 2 iterations"):
        LogisticProbe(max_iter=2).fit(X, y)


def test_logistic_restores_thread_count() -> None:
    before = torch.get_num_threads()
    X, y, _, _ = planted(n=200, d=8, seed=3)
    LogisticProbe().fit(X, y, n_threads=1)
    assert torch.get_num_threads() == before


def test_logistic_runtime_settings_are_not_hyperparameters() -> None:
    # scikit-learn rule: get_params (and so saved probe cards) hold what changes the model, not where
    # or with how many threads it was computed
    assert not {"device", "n_threads"} & set(LogisticProbe().get_params())
    X, y, _, _ = planted(n=200, d=8, seed=3)
    on_cpu = LogisticProbe().fit(torch.as_tensor(X), y, device="cpu", n_threads=None)
    np.testing.assert_allclose(on_cpu.coef_, LogisticProbe().fit(X, y).coef_)
    with pytest.raises(TypeError, match="only device and n_threads"):
        LogisticProbe().fit(X, y, sample_weight=np.ones(len(y)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_logistic_fits_on_the_input_tensors_device() -> None:
    X, y, _, _ = planted(n=2000, d=64, seed=3)
    on_gpu = LogisticProbe(C=1e-3).fit(torch.as_tensor(X, device="cuda"), torch.as_tensor(y, device="cuda"))
    on_cpu = LogisticProbe(C=1e-3).fit(X, y)
    assert on_gpu.direction_ @ on_cpu.direction_ > 0.9999


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        (LogisticProbe(C=0), "must be > 0"),
        (LogisticProbe(dtype="float16"), "not supported"),
        (LDAProbe(shrinkage=0.0), "shrinkage=0.0 is invalid"),
        (LDAProbe(shrinkage="oas"), "'ledoit_wolf' or a float"),
    ],
)
def test_bad_hyperparameters_are_named(probe: object, message: str) -> None:
    X, y, _, _ = planted(n=100, d=4, seed=4)
    with pytest.raises(ValueError, match=message):
        probe.fit(X, y)  # type: ignore[attr-defined]


def test_multiclass_rejected_with_fix() -> None:
    X = np.random.default_rng(0).standard_normal((30, 3))
    with pytest.raises(NotBinaryError, match="one probe per concept"):
        DiffMeanProbe().fit(X, np.arange(30) % 3)


def test_lat_pairing_errors_name_the_fix() -> None:
    X, y, pair_ids, _ = planted(n=40, d=4, seed=5)
    with pytest.raises(PairingError, match="one pair id per row"):
        LATProbe().fit(X, y, pair_ids=pair_ids[:-1])
    broken = pair_ids.copy()
    broken[0] = 999  # the negative row of pair 0 moves to a new, one-sided pair
    with pytest.raises(PairingError, match="GroupKFold"):
        LATProbe().fit(X, y, pair_ids=broken)


def test_lat_without_pairs_uses_seeded_random_pairing() -> None:
    X, y, _, direction = planted(n=2000, d=16, seed=6, separation=3.0)
    first, second = LATProbe(random_state=1).fit(X, y), LATProbe(random_state=1).fit(X, y)
    np.testing.assert_array_equal(first.direction_, second.direction_)
    assert first.direction_ @ direction > 0.9


def test_pipeline_and_grouped_cross_validation_route_pair_ids() -> None:
    X, y, pair_ids, _ = planted(n=400, d=16, seed=7, separation=3.0)
    pipe = make_pipeline(FunctionTransformer(), LATProbe())
    pipe.fit(X, y, latprobe__pair_ids=pair_ids)
    paired = LATProbe().fit(X, y, pair_ids=pair_ids)
    np.testing.assert_allclose(pipe[-1].direction_, paired.direction_)
    assert not np.allclose(LATProbe().fit(X, y).direction_, paired.direction_)  # pairs were used
    assert pipe.score(X, y) > 0.95
    scores = cross_val_score(
        LATProbe(), X, y, groups=pair_ids, cv=GroupKFold(3), params={"pair_ids": pair_ids}
    )
    assert scores.min() > 0.95
    assert cross_val_score(LogisticProbe(), X, y, cv=3).min() > 0.95

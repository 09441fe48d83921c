"""Merging equal columns before a text monitor's cross-validation fits is exact: the same L2 logistic
regression optimum, so the same decision values (to the solver's tolerance) and the same chosen variant,
on a fraction of the stored entries. Leaving out the sqrt(count) scale breaks it, and the test sees that."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix, hstack
from scipy.sparse import random as sparse_random

import tripwire.probes.baselines as baselines
import tripwire.probes.text_monitors as text_monitors
from tripwire.probes.baselines import StreamingTextMonitor
from tripwire.probes.text_monitors import NgramTextMonitor, classifier, merge_identical_columns


def _templated(seed: int) -> tuple[csr_matrix, csr_matrix, np.ndarray]:
    """Rows that share a block of equal columns (a template every row holds), plus distinct columns."""
    rng = np.random.default_rng(seed)
    distinct = sparse_random(120, 40, density=0.2, random_state=seed, format="csr")
    shared = np.abs(rng.standard_normal((120, 1)))
    template = csr_matrix(np.repeat(shared, 25, axis=1))  # 25 equal columns
    x = hstack([distinct[:, :20], template, distinct[:, 20:]]).tocsr()
    y = (np.asarray(distinct[:, :5].sum(axis=1)).ravel() + shared.ravel() > np.median(shared) + 0.2).astype(int)
    return x[:90], x[90:], y


@pytest.mark.parametrize("C", [0.1, 1.0, 100.0])
def test_merged_columns_give_the_same_decision_values(C: float) -> None:
    train, test, y = _templated(0)
    merged_train, merged_test = merge_identical_columns(train, test)
    assert merged_train.shape[1] == 41 and merged_train.shape[0] == 90 and merged_test.shape[0] == 30
    assert merged_train.nnz < train.nnz
    full = classifier(C).fit(train, y[:90]).decision_function(test)
    fewer = classifier(C).fit(merged_train, y[:90]).decision_function(merged_test)
    np.testing.assert_allclose(fewer, full, atol=2e-3 * max(1.0, np.abs(full).max()))


def test_merging_without_the_square_root_scale_changes_the_fit() -> None:
    """The broken construction: one representative column, unscaled, is a different (more penalised) model."""
    train, test, y = _templated(0)
    merged_train, merged_test = merge_identical_columns(train, test)
    keep = [*range(20), 20, *range(45, 65)]  # the distinct columns and one template column, no scale
    naive = classifier(1.0).fit(train[:, keep], y[:90]).decision_function(test[:, keep])
    full = classifier(1.0).fit(train, y[:90]).decision_function(test)
    right = classifier(1.0).fit(merged_train, y[:90]).decision_function(merged_test)
    assert np.abs(naive - full).max() > 20 * np.abs(right - full).max()


def test_columns_equal_only_on_the_training_rows_stay_apart() -> None:
    """Equal on training rows but not on test rows: merging must look at both, or test scores change."""
    train = csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.5]]))
    test = csr_matrix(np.array([[1.0, 0.0, 0.0]]))
    assert merge_identical_columns(train)[0].shape[1] == 2
    assert merge_identical_columns(train, test)[0].shape[1] == 3


def test_streaming_monitor_chooses_the_same_variant_as_unmerged_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CV table computed on merged columns equals one computed on the full prefix rows."""
    rng = np.random.default_rng(3)
    template = " ".join(f"word{i}" for i in range(60))
    texts, cuts, y = [], [], []
    for i in range(40):
        label = i % 2
        reply = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "could", "will"], 12))
        reply += " I could go but I will stay" if label else " I will go but I could stay"
        text = f"{template} case {i} {reply}"
        texts.append(text)
        cuts.append(np.linspace(len(template) + 10, len(text), 5).astype(int))
        y.append(label)
    groups = np.arange(40) // 2
    merged = StreamingTextMonitor.order_aware().fit(texts, cuts, y, groups)
    monkeypatch.setattr(baselines, "merge_identical_columns", lambda *blocks: [csr_matrix(b) for b in blocks])
    plain = StreamingTextMonitor.order_aware().fit(texts, cuts, y, groups)
    assert merged.chosen_.name == plain.chosen_.name and len(merged.cv_table_) == len(plain.cv_table_) == 16
    for a, b in zip(merged.cv_table_, plain.cv_table_, strict=True):
        assert (a.features, a.C) == (b.features, b.C) and abs(a.auroc - b.auroc) < 0.02


def test_span_monitor_chooses_the_same_variant_as_unmerged_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    texts = [" ".join(rng.choice(["the", "plan", "is", "to", "wait", "act", "now", "later"], 10))
             + (" could then will" if i % 2 else " will then could") for i in range(40)]
    y, groups = np.arange(40) % 2, np.arange(40) // 2
    merged = NgramTextMonitor().fit(texts, y, groups)
    monkeypatch.setattr(text_monitors, "merge_identical_columns", lambda *blocks: [csr_matrix(b) for b in blocks])
    plain = NgramTextMonitor().fit(texts, y, groups)
    assert merged.chosen_.name == plain.chosen_.name and len(merged.cv_table_) == len(plain.cv_table_) == 16
    for a, b in zip(merged.cv_table_, plain.cv_table_, strict=True):
        assert abs(a.auroc - b.auroc) < 0.02

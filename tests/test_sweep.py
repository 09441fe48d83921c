"""Grouped splits, the layer x method sweep and the generalisation matrix on planted data."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression

from tripwire.probes.generalisation import GeneralisationError, generalisation_matrix
from tripwire.probes.splits import SplitError, TooFewGroupsError, grouped_split, remove_words, word_filtered
from tripwire.probes.sweep import LayerData, SweepInputError, run_sweep

D = 16


def _planted(n: int, strength: float, seed: int, n_groups: int = 12) -> tuple[np.ndarray, ...]:
    """Rows whose label shifts feature 0 by `strength`; groups mix both labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, D))
    X[:, 0] += strength * y
    groups = np.arange(n) % n_groups
    return X, y, groups


def _layers() -> dict[int, tuple[Any, ...]]:
    # Same labels and groups at every layer (same rows); only layer 2 carries a strong signal.
    _, y, groups = _planted(240, 0.0, seed=0)
    out: dict[int, tuple[Any, ...]] = {}
    for layer, strength in [(0, 0.0), (1, 0.6), (2, 3.0), (3, 0.6)]:
        X = np.random.default_rng(10 + layer).normal(size=(240, D))
        X[:, 0] += strength * y
        out[layer] = (X, y, groups)
    return out


METHODS = {
    "logistic": LogisticRegression(max_iter=500),
    "lda": LinearDiscriminantAnalysis(),
}


def test_grouped_split_keeps_groups_apart_and_is_deterministic() -> None:
    groups = np.repeat(np.arange(10), 7)
    y = np.tile([0, 1], 35)
    a = grouped_split(groups, y, seed=4)
    b = grouped_split(groups, y, seed=4)
    c = grouped_split(groups, y, seed=5)
    assert all(np.array_equal(getattr(a, p), getattr(b, p)) for p in ("train", "val", "test"))
    assert not all(np.array_equal(getattr(a, p), getattr(c, p)) for p in ("train", "val", "test"))
    sets = [set(groups[getattr(a, p)].tolist()) for p in ("train", "val", "test")]
    assert sets[0].isdisjoint(sets[1]) and sets[0].isdisjoint(sets[2]) and sets[1].isdisjoint(sets[2])
    assert sorted(np.concatenate([a.train, a.val, a.test]).tolist()) == list(range(70))
    assert a.sizes()["train"] >= 35  # about 60%


def test_grouped_split_errors_say_how_many_groups() -> None:
    with pytest.raises(TooFewGroupsError, match="2 distinct group.*at least 3"):
        grouped_split(["a", "a", "b", "b"])
    # Each group holds one class only and there are just 3 groups: a part must lack a class.
    with pytest.raises(SplitError, match="both classes"):
        grouped_split(np.repeat([0, 1, 2], 4), np.repeat([0, 1, 1], 4), max_tries=20)
    # Class 1 sits in 2 of 6 groups: refused at once, naming how many groups hold each class.
    with pytest.raises(SplitError, match=r"both classes.*\{'0': 4, '1': 2\}"):
        grouped_split(np.repeat(np.arange(6), 3), np.repeat([0, 0, 0, 0, 1, 1], 3))
    with pytest.raises(SplitError, match="both classes"):
        grouped_split(np.arange(10), np.zeros(10))


@pytest.mark.parametrize("labelled", [True, False])
def test_grouped_split_test_share_is_within_one_group(labelled: bool) -> None:
    """Equal and unequal group sizes, default and other fractions: each part's share of examples is
    its fraction, give or take one group (the test part exactly so)."""
    rng = np.random.default_rng(3)
    for case in range(12):
        n_groups = int(rng.integers(3, 40))
        sizes = rng.integers(1, 60, size=n_groups) if case % 2 else np.full(n_groups, 9)
        groups = np.repeat(np.arange(n_groups), sizes)
        y = np.tile([0, 1], groups.size)[: groups.size] if labelled else None
        fractions = (0.6, 0.2, 0.2) if case % 3 else (0.7, 0.15, 0.15)
        split = grouped_split(groups, y, fractions=fractions, seed=case)
        for part, frac in zip(("train", "val", "test"), fractions, strict=True):
            idx = getattr(split, part)
            slack = 1.0 if part == "test" else 1.25
            assert abs(idx.size - frac * groups.size) <= slack * sizes.max(), (case, part)
            assert idx.size and (y is None or set(y[idx].tolist()) == {0, 1})
        assert sorted(np.concatenate([split.train, split.val, split.test])) == list(range(groups.size))


def test_grouped_split_stratifies_the_labels() -> None:
    """Groups with positive rates from 5% to 95%: each part's rate stays near the overall rate (a
    plain shuffle of groups, the old hand-written split, was off by 0.13 on average)."""
    groups = np.repeat(np.arange(30), 20)
    y = (np.random.default_rng(1).uniform(size=600) < np.linspace(0.05, 0.95, 30)[groups]).astype(int)
    splits = [grouped_split(groups, y, seed=seed) for seed in range(20)]
    off = [max(abs(y[part].mean() - y.mean()) for part in (s.val, s.test)) for s in splits]
    assert np.mean(off) < 0.06


def test_word_filtered_and_remove_words() -> None:
    texts = ["I will Blackmail him.", "Blackmailing is wrong", "Send the report today.", "a test run"]
    mask = word_filtered(texts, ["blackmail", "test"])
    assert mask.tolist() == [False, False, True, False]
    assert remove_words(texts, ["blackmail"]) == [
        "I will him.",
        "is wrong",
        "Send the report today.",
        "a test run",
    ]
    with pytest.raises(SplitError, match="empty"):
        word_filtered(texts, [" "])


def test_sweep_selects_planted_layer_on_validation() -> None:
    res = run_sweep(_layers(), METHODS, n_boot=100, seed=0, progress=False)
    assert len(res.rows) == 8
    assert res.selected[0] == 2
    best = res.selected_row
    assert best.test_auroc.value > 0.9 and best.test_auroc.low > 0.8
    assert res.row(0, "logistic").test_auroc.low < 0.75  # no signal at layer 0
    # balanced accuracy follows the AUROC: high with an interval of real width at the planted layer, chance at 0
    assert 0.75 < best.test_bacc.low < best.test_bacc.value < best.test_bacc.high <= 1.0
    assert res.row(0, "logistic").test_bacc.low < 0.5 < res.row(0, "logistic").test_bacc.high
    assert sum(res.split_sizes.values()) == 240
    md = res.to_markdown()
    assert md.count("\n| ") == 8 and "Selected by validation AUROC (row statistic, ties by log-loss): layer 2" in md
    assert str(res) == md
    d = json.loads(res.to_json())
    assert d["selected"] == {"layer": 2, "method": res.selected[1]}
    assert len(d["rows"]) == 8 and set(d["rows"][0]["test_auroc"]) >= {"value", "low", "high"}
    assert res.best_estimator is not None


def test_ties_at_validation_auroc_go_to_the_wider_margin_not_the_first_cell() -> None:
    """Layers 1, 2 and 3 all separate validation perfectly; the old rule (`max` keeps the first) took
    layer 1. Ties are broken by validation log-loss, which prefers layer 3's wider margin."""
    _, y, groups = _planted(240, 0.0, seed=0)
    layers: dict[int, tuple[Any, ...]] = {}
    for layer, strength in [(1, 8.0), (2, 10.0), (3, 30.0)]:
        X = np.random.default_rng(10 + layer).normal(size=(240, D))
        X[:, 0] += strength * y
        layers[layer] = (X, y, groups)
    res = run_sweep(layers, {"lda": LinearDiscriminantAnalysis()}, n_boot=0, progress=False)
    assert [r.val_auroc for r in res.rows] == [1.0, 1.0, 1.0]
    assert max(res.rows, key=lambda r: r.val_auroc).layer == 1  # what `max` picked
    assert res.selected == (3, "lda")
    assert res.rows[2].val_logloss < res.rows[0].val_logloss


def test_selection_reads_the_streaming_statistic_of_whole_transcripts() -> None:
    """One planted token per positive transcript: the mean dilutes it, the streaming statistic (max
    running mean over a short window) finds it, so the sweep's validation AUROC says so."""
    rng = np.random.default_rng(5)
    n, tok = 120, 30
    y = np.tile([0, 1], n // 2)
    X = rng.normal(size=(n * tok, D))
    spike = np.flatnonzero(y) * tok + 10
    X[spike, 0] += 6.0
    tids = np.repeat(np.arange(n), tok)
    data = {0: LayerData(X, np.repeat(y, tok), np.repeat(np.arange(n) % 12, tok), transcript_ids=tids)}
    proto = {"lda": LinearDiscriminantAnalysis()}
    mean = run_sweep(data, proto, n_boot=0, progress=False, val_statistic="mean").rows[0]
    stream = run_sweep(data, proto, n_boot=0, progress=False, val_statistic="streaming", window=1).rows[0]
    assert stream.val_statistic == "streaming" and stream.val_auroc > mean.val_auroc + 0.1


def test_sweep_callable_source_and_per_token_rows() -> None:
    base = _layers()
    tokens_per = 3
    calls: list[int] = []

    def load(layer: int) -> LayerData:
        calls.append(layer)
        X, y, g = base[layer]
        rng = np.random.default_rng(layer)
        Xt = np.repeat(X, tokens_per, axis=0) + 0.1 * rng.normal(size=(len(y) * tokens_per, D))
        tids = np.repeat(np.arange(len(y)), tokens_per)
        return LayerData(Xt, np.repeat(y, tokens_per), np.repeat(g, tokens_per), transcript_ids=tids)

    with pytest.raises(SweepInputError, match="layers="):
        run_sweep(load, METHODS)
    res = run_sweep(load, {"logistic": METHODS["logistic"]}, layers=[0, 2], n_boot=50, progress=False)
    assert calls == [0, 2]
    assert sum(res.split_sizes.values()) == 240  # counted in transcripts, not tokens
    assert res.selected == (2, "logistic")


def test_sweep_passes_pair_ids_only_to_estimators_that_take_them() -> None:
    seen: list[Any] = []

    class PairAware(LogisticRegression):
        def fit(self, X: Any, y: Any, pair_ids: Any = None) -> PairAware:  # type: ignore[override]
            seen.append(pair_ids)
            return super().fit(X, y)

    X, y, g = _layers()[2]
    pairs = np.arange(len(y)) // 2
    run_sweep(
        {5: (X, y, g, pairs)}, {"pair": PairAware(), "plain": METHODS["logistic"]}, n_boot=0, progress=False
    )
    assert len(seen) == 1 and seen[0] is not None and len(seen[0]) < len(y)


def test_sweep_rejects_inconsistent_layers() -> None:
    layers = _layers()
    X, y, g = layers[1]
    layers[1] = (X, 1 - y, g)
    with pytest.raises(SweepInputError, match="layer 1 has different labels"):
        run_sweep(layers, METHODS, n_boot=0, progress=False)
    with pytest.raises(SweepInputError, match="entries for"):
        run_sweep({0: (X, y[:-1], g)}, METHODS, n_boot=0, progress=False)


def test_generalisation_matrix_planted_transfer() -> None:
    rng = np.random.default_rng(0)
    n = 300
    kind = np.repeat(["blackmail", "leaking", "lethal"], n // 3)
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, D))
    shared = kind != "lethal"
    X[shared, 0] += 3 * y[shared]  # blackmail and leaking share a direction
    X[~shared, 1] += 3 * y[~shared]  # lethal uses another
    subsets = {k: kind == k for k in ("blackmail", "leaking", "lethal")}
    m = generalisation_matrix(X, y, subsets, LogisticRegression(max_iter=500))
    assert set(m) == set(subsets) and "blackmail" not in m["blackmail"]
    assert m["blackmail"]["leaking"] is not None and m["blackmail"]["leaking"] > 0.9
    assert m["blackmail"]["lethal"] is not None and m["blackmail"]["lethal"] < 0.7
    with pytest.raises(GeneralisationError, match="only one class"):
        generalisation_matrix(X, y, {"a": y == 1, "b": y == 0}, LogisticRegression())

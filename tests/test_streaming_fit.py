"""Streaming fits (``fit_chunks`` over ``store_chunks``) equal in-memory fits on a store that fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.covariance import ledoit_wolf

from tripwire.activations.positions import LastK
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_types import RecordMeta, StoreDtype, StoreRecordError
from tripwire.probes.estimators import (
    DiffMeanProbe,
    LATProbe,
    LDAProbe,
    LinearProbe,
    LogisticProbe,
    PairingError,
    l2_logistic_objective,
)
from tripwire.probes.estimators._chunks import ChunkSourceError
from tripwire.probes.estimators.mean_difference import shrunk_within
from tripwire.probes.streaming import record_scores, store_chunks

HOOK = "blocks.1.resid_post"
D = 24


def planted_store(path: Path, dtype: StoreDtype = "float16", n_batches: int = 4, per_batch: int = 10) -> ResidualStore:
    """Pairs of records (same context, concept absent/present) with a planted direction and a far mean."""
    store = ResidualStore.create(
        path, model_name="m", model_fingerprint="fp", hook_points=["blocks.0.resid_post", HOOK], d_model=D,
        dtype=dtype,
    )
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(D)
    with store.writer() as writer:
        for b in range(n_batches):
            records, blocks = [], []
            for k in range(per_batch):
                n_tokens, label = 5 + (k * 7 + b) % 9, k % 2
                records.append(RecordMeta(
                    record_id=f"r{b}-{k}", condition_id=f"c{label}", sample_index=k, seed=b, sampling={},
                    token_ids=list(range(n_tokens)), text="x", n_prompt_tokens=2,
                    positions=list(range(1, n_tokens)), scaffold_mask=[False] * n_tokens,
                    labels={"concept": label}, meta={"pair_id": f"p{b}-{k // 2}"},
                ))
                noise = rng.standard_normal((n_tokens - 1, D)) * rng.uniform(0.5, 2.0, D)
                blocks.append(4.0 + noise + (0.6 * label - 0.3) * direction)
            rows = torch.as_tensor(np.concatenate(blocks), dtype=torch.float32)
            writer.commit_batch(f"b{b}", records, {"blocks.0.resid_post": torch.zeros_like(rows), HOOK: rows})
    return store


def in_memory(store: ResidualStore, policy: LastK | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference rows read record by record (not through store_chunks), labels and pair ids per row."""
    records = store.records()
    rows = [store.activations(r, HOOK, policy).float().numpy() for r in records]
    y = np.concatenate([np.full(len(x), r.labels["concept"]) for x, r in zip(rows, records, strict=True)])
    pairs = np.concatenate([np.full(len(x), r.meta["pair_id"]) for x, r in zip(rows, records, strict=True)])
    return np.concatenate(rows), y, pairs


PROBES: list[tuple[str, LinearProbe]] = [
    ("logistic", LogisticProbe(C=0.05, tol=1e-6)),
    ("diffmean", DiffMeanProbe()),
    ("lda_ledoit_wolf", LDAProbe()),
    ("lda_fixed", LDAProbe(shrinkage=0.3)),
    ("lat", LATProbe()),
]


@pytest.mark.parametrize("chunk_rows", [7, 10_000])
@pytest.mark.parametrize(("name", "probe"), PROBES, ids=[name for name, _ in PROBES])
def test_streaming_fit_matches_in_memory(tmp_path: Path, name: str, probe: LinearProbe, chunk_rows: int) -> None:
    store = planted_store(tmp_path / "s")
    X, y, pairs = in_memory(store)
    source = store_chunks(store, HOOK, [r.record_id for r in store.records()], "concept", chunk_rows=chunk_rows)
    assert source.n_rows == len(X)
    paired = {"pair_ids": pairs} if name == "lat" else {}
    memory = probe.__class__(**probe.get_params()).fit(X, y, **paired)
    streamed_pairs = {"pair_ids": source.per_row([r.meta["pair_id"] for r in source.records])} if paired else {}
    streamed = probe.__class__(**probe.get_params()).fit_chunks(source, **streamed_pairs)

    assert memory.direction_ @ streamed.direction_ >= 0.9999
    np.testing.assert_allclose(streamed.mean_, memory.mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(streamed.scale_, memory.scale_, rtol=1e-12)
    np.testing.assert_allclose(streamed.decision_function(X), memory.decision_function(X), rtol=1e-5, atol=1e-5)
    if isinstance(memory, LogisticProbe):
        losses = [
            l2_logistic_objective(p.decision_function(X), y, p.coef_[0] * p.scale_, probe.C)
            for p in (memory, streamed)
        ]
        assert losses[1] == pytest.approx(losses[0], rel=1e-6)
    if isinstance(memory, LDAProbe):
        assert streamed.shrinkage_ == pytest.approx(memory.shrinkage_, rel=1e-9)


@pytest.mark.parametrize("shape", [(30, 12), (200, 12), (15, 1)])
def test_streamed_ledoit_wolf_is_sklearns(shape: tuple[int, int]) -> None:
    within = np.random.default_rng(1).standard_normal(shape) * np.linspace(0.2, 3.0, shape[1])
    covariance, shrinkage = shrunk_within(
        within.T @ within, float((np.sum(within**2, axis=1) ** 2).sum()), shape[0], "ledoit_wolf"
    )
    expected_cov, expected_shrinkage = ledoit_wolf(within, assume_centered=True)
    assert shrinkage == pytest.approx(expected_shrinkage, rel=1e-10, abs=1e-14)
    np.testing.assert_allclose(covariance, expected_cov, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_store_chunks_reads_chosen_positions(tmp_path: Path, dtype: StoreDtype) -> None:
    store = planted_store(tmp_path / "s", dtype=dtype, n_batches=2)
    records = store.records()[::3]
    positions = [r.positions[1::2] for r in records]
    source = store_chunks(store, HOOK, [r.record_id for r in records], [7] * len(records), positions, chunk_rows=4)
    chunks = list(source())
    assert all(len(X) <= 4 for X, _ in chunks) and chunks[0][0].dtype == getattr(torch, dtype)
    got = torch.cat([X for X, _ in chunks])
    expected = torch.cat([store.activations(r, HOOK)[1::2] for r in records])
    assert torch.equal(got, expected)
    assert set(np.concatenate([y for _, y in chunks]).tolist()) == {7}
    np.testing.assert_array_equal(source.per_row(np.arange(len(records))), np.repeat(np.arange(len(records)), [len(p) for p in positions]))
    by_policy = store_chunks(store, HOOK, [r.record_id for r in records], "concept", policy=LastK(2))
    assert torch.equal(torch.cat([X for X, _ in by_policy()]), torch.cat([store.activations(r, HOOK, LastK(2)) for r in records]))


def test_store_chunks_name_bad_requests(tmp_path: Path) -> None:
    store = planted_store(tmp_path / "s", n_batches=1)
    first = store.records()[0]
    with pytest.raises(KeyError, match="not in store"):
        store_chunks(store, HOOK, ["nope"], [0])
    with pytest.raises(KeyError, match="hook point"):
        store_chunks(store, "blocks.9.resid_post", [first.record_id], [0])
    with pytest.raises(StoreRecordError, match="no stored rows for positions"):
        store_chunks(store, HOOK, [first.record_id], [0], [[0]])  # position 0 (the sink) is not stored
    with pytest.raises(ValueError, match="positions or policy"):
        store_chunks(store, HOOK, [first.record_id], [0], [[1]], policy=LastK(1))
    with pytest.raises(ValueError, match="lack label"):
        store_chunks(store, HOOK, [first.record_id], "missing")


def test_one_shot_generator_is_refused() -> None:
    X, y = np.random.default_rng(0).standard_normal((40, 3)), np.arange(40) % 2
    once = iter([(X[:20], y[:20]), (X[20:], y[20:])])
    with pytest.raises(ChunkSourceError, match="new pass"):
        DiffMeanProbe().fit_chunks(lambda: once)


def test_streaming_input_errors() -> None:
    X, y = np.random.default_rng(0).standard_normal((40, 3)), np.arange(40) % 2
    with pytest.raises(ValueError, match="features"):
        DiffMeanProbe().fit_chunks(lambda: [(X, y), (X[:, :2], y)])
    with pytest.raises(ValueError, match="one probe per concept"):
        LDAProbe().fit_chunks(lambda: [(X, y), (X, y + 1)])
    with pytest.raises(ChunkSourceError, match="no rows"):
        LogisticProbe().fit_chunks(lambda: [(X[:0], y[:0])])
    with pytest.raises(PairingError, match="needs pair_ids"):
        LATProbe().fit_chunks(lambda: [(X, y)])
    with pytest.raises(PairingError, match="one pair id per row"):
        LATProbe().fit_chunks(lambda: [(X, y)], pair_ids=np.arange(39) // 2)


def test_record_scores_match_decision_function(tmp_path: Path) -> None:
    store = planted_store(tmp_path / "s", dtype="bfloat16", n_batches=1)
    X, y, _ = in_memory(store)
    probe = DiffMeanProbe().fit(X, y)
    scores = record_scores(probe, store, HOOK, store.records(), LastK(3))
    np.testing.assert_allclose(np.concatenate(scores), probe.decision_function(in_memory(store, LastK(3))[0]))
    assert [len(s) for s in scores] == [3] * len(store.records())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_streaming_logistic_on_gpu_matches_cpu(tmp_path: Path) -> None:
    store = planted_store(tmp_path / "s")
    source = store_chunks(store, HOOK, [r.record_id for r in store.records()], "concept", chunk_rows=50)
    on_gpu = LogisticProbe(C=0.05, tol=1e-6).fit_chunks(source, device="cuda")
    on_cpu = LogisticProbe(C=0.05, tol=1e-6).fit_chunks(source)
    assert on_gpu.direction_ @ on_cpu.direction_ >= 0.9999

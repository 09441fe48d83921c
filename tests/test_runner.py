"""run_batches: deterministic batching, skipping done work, and refusing inconsistent compute output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from store_worker import random_batch  # noqa: E402

from tripwire.activations.runner import (  # noqa: E402
    BatchResult,
    RunnerError,
    WorkItem,
    batch_id_for,
    plan_batches,
    run_batches,
)
from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_types import RecordMeta  # noqa: E402

HOOKS = ["blocks.1.resid_post"]


def items(n: int) -> list[WorkItem[int]]:
    return [WorkItem(f"rec-{i:03d}", i) for i in range(n)]


class Compute:
    """Deterministic fake capture: each record's rows are derived from its payload; logs batches."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, batch: list[WorkItem[int]]) -> BatchResult:
        self.batches.append([it.record_id for it in batch])
        records: list[RecordMeta] = []
        rows = []
        for it in batch:
            (template,), row = random_batch(1, 4, HOOKS, seed=it.payload)
            records.append(RecordMeta(**{**template.to_json(), "record_id": it.record_id}))
            rows.append(row[HOOKS[0]])
        return BatchResult(records, {HOOKS[0]: torch.cat(rows)})


def new_store(path: Path) -> ResidualStore:
    return ResidualStore.create(path, model_name="m", model_fingerprint="f", hook_points=HOOKS, d_model=4)


def test_plan_is_deterministic_and_ordered():
    plan = plan_batches(items(10), 4)
    assert [[it.payload for it in chunk] for chunk in plan] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batch_id_for(["a", "b"]) == batch_id_for(["a", "b"]) != batch_id_for(["b", "a"])
    with pytest.raises(RunnerError, match="batch_size=0"):
        plan_batches(items(3), 0)
    with pytest.raises(RunnerError, match="more than once"):
        plan_batches([*items(3), WorkItem("rec-001", 9)], 2)


def test_run_then_rerun_skips_everything(tmp_path):
    store = new_store(tmp_path / "s")
    compute = Compute()
    summary = run_batches(store, items(10), 4, compute, progress=False)
    assert (summary.batches_total, summary.batches_computed, summary.batches_skipped) == (3, 3, 0)
    assert summary.records_written == 10 and summary.tokens_written == sum(
        len(r.token_ids) for r in store.records()
    )
    expected_ids = {batch_id_for(chunk) for chunk in compute.batches}
    assert store.done_batch_ids() == expected_ids
    again = Compute()
    summary = run_batches(ResidualStore.open(tmp_path / "s"), items(10), 4, again, progress=False)
    assert again.batches == [] and summary.batches_skipped == 3 and summary.records_written == 0


def test_growing_the_item_list_computes_only_new_records(tmp_path):
    store = new_store(tmp_path / "s")
    run_batches(store, items(6), 4, Compute(), progress=False)
    compute = Compute()
    run_batches(store, items(12), 4, compute, progress=False)
    # the old partial batch [4, 5] is done; its chunk [4..7] now only computes 6 and 7
    assert compute.batches == [["rec-006", "rec-007"], [f"rec-{i:03d}" for i in range(8, 12)]]
    ids = [r.record_id for r in store.records()]
    assert sorted(ids) == [f"rec-{i:03d}" for i in range(12)]


def test_changed_batch_size_never_duplicates(tmp_path):
    store = new_store(tmp_path / "s")
    run_batches(store, items(5), 2, Compute(), progress=False)
    reference = new_store(tmp_path / "ref")
    run_batches(reference, items(9), 3, Compute(), progress=False)
    run_batches(store, items(9), 3, Compute(), progress=False)
    by_id = {r.record_id: r for r in store.records()}
    assert len(by_id) == len(store) == 9
    for ref in reference.records():
        assert torch.equal(
            store.activations(by_id[ref.record_id], HOOKS[0]), reference.activations(ref, HOOKS[0])
        )


def test_compute_returning_wrong_records_is_refused(tmp_path):
    store = new_store(tmp_path / "s")

    def swapped(batch: list[WorkItem[int]]) -> BatchResult:
        result = Compute()(batch)
        return BatchResult(result.records[::-1], result.rows)

    with pytest.raises(RunnerError, match="in item order"):
        run_batches(store, items(4), 2, swapped, progress=False)
    assert len(ResidualStore.open(tmp_path / "s")) == 0

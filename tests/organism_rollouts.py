"""A tiny model's sampled organism rollouts, stored as `organism measure` stores them: the detectors'
tests (P2 and P1) read these, so they run on real stored windows rather than made-up arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tripwire.activations.handle import ModelHandle
from tripwire.activations.sampling import SamplingParams
from tripwire.activations.store import ResidualStore
from tripwire.experiments.organism_detect import TEST_SPLIT, TRAIN_SPLIT
from tripwire.experiments.organism_measure import sample_rollouts
from tripwire.scenarios.organism.dataset import OrganismPrompt, prompts
from tripwire.scenarios.organism.policy import DETERMINISTIC_POLICY

Measured = tuple[ResidualStore, list[dict[str, Any]], dict[tuple[str, str, int], OrganismPrompt]]


def measured_rollouts(handle: ModelHandle, folder: Path, per_condition: int, samples: int, new_tokens: int
                      ) -> Measured:
    """(store, rollout rows, prompt by (split, condition, seed)) for the trained- and held-out-family splits
    (the inert arm left out), at blocks 1 and 3."""
    hooks = [str(hp) for hp in handle.hook_points(["blocks.1.hook_resid_post", "blocks.3.hook_resid_post"])]
    store = ResidualStore.create(folder / "s", model_name=handle.name, model_fingerprint=handle.fingerprint,
                                 hook_points=hooks, d_model=handle.d_model)
    rows: list[dict[str, Any]] = []
    by_key = {}
    for split in (TRAIN_SPLIT, TEST_SPLIT):
        items = [p for p in prompts(split, per_condition, DETERMINISTIC_POLICY) if p.condition.arm != "inert"]
        by_key |= {(p.split, p.condition.id, p.conversation.seed): p for p in items}
        rows += sample_rollouts(handle, store, items, samples=samples, batch=32, progress=False,
                                sampling=SamplingParams(max_new_tokens=new_tokens, temperature=1.0))
    return store, rows, by_key


def planted_labels(store: ResidualStore, rows: list[dict[str, Any]], seed: int = 0, read: str = "mean"
                   ) -> list[dict[str, Any]]:
    """The rows relabelled harmful where the stored window at the first hook (its mean, or with `read="last"`
    its last row) leans along a random direction (drawn from `seed`) beyond its median: a construction a probe
    must find."""
    by_id = {r.record_id: r for r in store.records()}
    hook = store.manifest.hook_points[0]
    direction = np.random.default_rng(seed).normal(size=store.manifest.d_model)

    def window(record_id: str) -> np.ndarray:
        rows_ = store.activations(by_id[record_id], hook).float()
        return (rows_.mean(0) if read == "mean" else rows_[-1]).numpy()

    lean = np.array([window(r["record_id"]) @ direction for r in rows])
    return [dict(r, harmful=bool(v > np.median(lean))) for r, v in zip(rows, lean, strict=True)]

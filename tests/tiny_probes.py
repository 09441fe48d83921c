"""Probe cards for the tiny test models: a DiffMean direction on random data, with the card fields the
monitor (streaming threshold) and steering (resid_norm) read."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tripwire.activations import ModelHandle, ReplyOnly
from tripwire.probes import ProbeCard, save_probe
from tripwire.probes.estimators import DiffMeanProbe
from tripwire.probes.thresholds import Threshold

WINDOW = 3


def tiny_probe(handle: ModelHandle, folder: Path, label: str, layer: int, threshold: float = 1e9,
               resid_norm: float | None = 0.2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], 40)
    X = rng.normal(size=(80, handle.d_model)) + np.outer(y, rng.normal(size=handle.d_model))
    card = ProbeCard(label=label, model_name=handle.name, model_fingerprint=handle.fingerprint,
                     hook_point=f"blocks.{layer}.resid_post", layer=layer, score_positions=ReplyOnly(), window=WINDOW,
                     resid_norm=resid_norm,
                     thresholds={"streaming": Threshold(threshold, None, None, 0.01, None, None, "streaming", WINDOW)})
    return save_probe(DiffMeanProbe().fit(X, y), folder / label, card, overwrite=True)

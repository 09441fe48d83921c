"""Training probes from a store: the estimators' fit on captured rows (`tripwire train`), the card it
writes, evaluation of a saved probe (`tripwire eval`), and the design study behind the shipped probes
(the development data, the fold evaluation and the verdict against the text baselines)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire._lazy import exports

if TYPE_CHECKING:
    from tripwire.probes.training.evaluate import evaluate_probe
    from tripwire.probes.training.probe_train import card_for, run_training
    from tripwire.probes.training.train import TrainResult, TrainSettings, train_probe

__getattr__, __dir__, __all__ = exports(__name__, __file__)

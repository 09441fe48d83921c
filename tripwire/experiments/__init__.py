"""Pipelines, configs and the `tripwire` CLI.

The public names load on first use, so `tripwire --help` and config validation never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "ExperimentConfig": "tripwire.experiments.experiment_config",
    "parse_experiment": "tripwire.experiments.experiment_config",
    "read_experiment": "tripwire.experiments.experiment_config",
    "ExperimentRun": "tripwire.experiments.experiment",
    "plan_experiment": "tripwire.experiments.experiment",
    "run_experiment": "tripwire.experiments.experiment",
    "RunDir": "tripwire.experiments.runs",
    "PIPELINES": "tripwire.experiments.experiment",
    "VLLMRolloutConfig": "tripwire.experiments.pipelines_vllm",
    "run_rollout_vllm": "tripwire.experiments.pipelines_vllm",
    "InspectModelArgs": "tripwire.experiments.inspect_capture",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'tripwire.experiments' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)

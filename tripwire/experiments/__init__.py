"""Experiments: configs, the rollout and capture runs, the stages of an experiment, run folders and
the report. The public names load on first use, so config validation never imports torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire._lazy import exports

if TYPE_CHECKING:
    from tripwire.experiments.config import ExperimentConfig, parse_experiment, read_experiment
    from tripwire.experiments.experiment import PIPELINES, ExperimentRun, plan_experiment, run_experiment
    from tripwire.experiments.inspect_capture import InspectModelArgs
    from tripwire.experiments.rollout_vllm import VLLMRolloutConfig, run_rollout_vllm
    from tripwire.experiments.runs import RunDir

__getattr__, __dir__, __all__ = exports(__name__, __file__)

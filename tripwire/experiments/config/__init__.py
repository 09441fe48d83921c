"""Every tripwire config in one place: `tripwire rollout` / `tripwire capture` run configs (`runs`) and
experiment configs (`experiment`), on one strict base (`base`). Pydantic only: no torch."""

from tripwire.experiments.config.base import STAGE_REF, ConfigError, Strict, read_yaml
from tripwire.experiments.config.experiment import (
    BehaviorOptions,
    EarlyWarningOptions,
    ExperimentConfig,
    ProbeOptions,
    RolloutOptions,
    RolloutWatch,
    Stage,
    StatedBeliefOptions,
    SteeringOptions,
    TranscriptsOptions,
    config_yaml,
    parse_experiment,
    probe_refs,
    read_experiment,
)
from tripwire.experiments.config.organism import (
    OrganismBehaviorOptions,
    OrganismDetectOptions,
    OrganismSteeringOptions,
)
from tripwire.experiments.config.runs import (
    CaptureConfig,
    MonitorSection,
    PositionsConfig,
    RolloutConfig,
    RunConfig,
    SamplingConfig,
    ScenarioSelection,
    SteerSection,
    load_config,
)

__all__ = [
    "STAGE_REF", "BehaviorOptions", "CaptureConfig", "ConfigError", "EarlyWarningOptions", "ExperimentConfig",
    "MonitorSection", "OrganismBehaviorOptions", "OrganismDetectOptions", "OrganismSteeringOptions", "PositionsConfig", "ProbeOptions", "RolloutConfig", "RolloutOptions", "RolloutWatch",
    "RunConfig", "SamplingConfig", "ScenarioSelection", "Stage", "StatedBeliefOptions", "SteerSection",
    "SteeringOptions", "Strict", "TranscriptsOptions", "config_yaml", "load_config", "parse_experiment",
    "probe_refs", "read_experiment", "read_yaml",
]

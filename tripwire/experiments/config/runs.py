"""Pydantic configs for `tripwire rollout` and `tripwire capture`: a typo is an error with its field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from tripwire.activations.positions import (
    AllTokens,
    BeforeAction,
    ExcludeLastK,
    LastK,
    LastPromptToken,
    PositionPolicy,
    ReplyOnly,
)
from tripwire.experiments.config.base import ConfigError, Strict, check_distinct, problem_lines, read_yaml
from tripwire.scenarios.datasets import DATASETS


class PositionsConfig(Strict):
    policy: Literal["all", "reply", "last_prompt", "last_k", "exclude_last_k", "before_action"] = "reply"
    k: int = Field(8, ge=1)
    drop_sink: bool = True
    drop_scaffold: bool = True

    def build(self) -> PositionPolicy:
        masks = {"drop_sink": self.drop_sink, "drop_scaffold": self.drop_scaffold}
        if self.policy == "all":
            return AllTokens(**masks)
        if self.policy == "reply":
            return ReplyOnly(**masks)
        if self.policy == "last_prompt":
            return LastPromptToken(**masks)
        if self.policy == "last_k":
            return LastK(self.k, **masks)
        if self.policy == "exclude_last_k":
            return ExcludeLastK(self.k, **masks)
        return BeforeAction(**masks)


class SamplingConfig(Strict):
    max_new_tokens: int = Field(64, ge=1, le=8192)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    stop: list[str] = []


class ScenarioSelection(Strict):
    ids: list[str] = []  # condition ids (lethal or murder); empty = the product of the factors below
    kinds: list[str] = ["blackmail", "leaking", "lethal"]
    goal_types: list[str] = ["explicit"]
    goal_values: list[str] = ["america"]
    urgencies: list[str] = ["replacement"]
    framings: list[str] = ["none"]
    length: Literal["short", "full"] = "short"
    seeds: list[int] = [0]


class RunConfig(Strict):
    model: str = "default"
    backend: Literal["hf", "transformer_lens", "nnsight"] = "hf"
    device: str | None = None
    dtype: str | None = None
    store: Path
    store_dtype: Literal["float16", "bfloat16", "float32"] = "float16"  # float32: exact comparison with live scores
    hook_points: list[str] = Field(default_factory=lambda: ["blocks.-1.resid_post"], min_length=1)
    positions: PositionsConfig = Field(default_factory=PositionsConfig)
    batch_size: int = Field(4, ge=1, le=1024)


class MonitorSection(Strict):
    """The online tripwire during the rollout: each probe's card sets its hook point, scored tokens,
    window and threshold; `stop` ends a row where any probe fires, `record` only notes where."""

    probes: list[str] = Field(min_length=1)  # probe folders or shipped names (default/coercion)
    on_trigger: Literal["stop", "record"] = "record"
    allow_other_model: bool = False

    @field_validator("probes")
    @classmethod
    def _distinct(cls, probes: list[str]) -> list[str]:
        return check_distinct(probes, f"lists a probe more than once: {probes}")


StepPositions = Literal["all", "prompt", "generated"] | int


class SteerSection(Strict):
    """A steering vector on every forward of the rollout: along a probe's direction (`alpha` in units of
    the card's resid_norm, or raw) or a saved `SteeringVector` folder (its own strengths)."""

    probe: str | None = None  # a probe folder or shipped name
    vector: Path | None = None  # a folder written by SteeringVector.save
    alpha: float | None = Field(None, allow_inf_nan=False)
    units: Literal["resid_norm", "raw"] | None = None
    mode: Literal["add", "ablate", "ablate_then_add"] | None = None  # default: add (probe), the file's (vector)
    positions: StepPositions | None = None  # all | prompt | generated | K (absolute position K on); default all
    allow_other_model: bool = False

    @field_validator("positions", mode="before")
    @classmethod
    def _positions(cls, value: Any) -> Any:
        if value is None or value in ("all", "prompt", "generated"):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ValueError(f"{value!r} is not all, prompt, generated or an absolute token position K >= 0 "
                         "(steer from position K on)")

    @model_validator(mode="after")
    def _one_source(self) -> SteerSection:
        if (self.probe is None) == (self.vector is None):
            raise ValueError("set exactly one of `probe` (a probe folder or shipped name, with `alpha`) or "
                             "`vector` (a folder written by SteeringVector.save)")
        if self.probe is not None and self.alpha is None:
            raise ValueError("`alpha` is required with `probe` (e.g. alpha: -0.3, in units of the card's "
                             "resid_norm; units: raw for a residual-space length)")
        if self.vector is not None and (self.alpha is not None or self.units is not None):
            raise ValueError("`alpha` and `units` go with `probe`; a saved `vector` carries its own strengths "
                             "(rebuild it with SteeringVector.from_probe to change them)")
        return self


class RolloutConfig(RunConfig):
    scenarios: ScenarioSelection = Field(default_factory=ScenarioSelection)
    samples: int = Field(1, ge=1)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    base_seed: int = 0
    positions: PositionsConfig = Field(default_factory=lambda: PositionsConfig(policy="all"))
    monitor: MonitorSection | None = None
    steer: SteerSection | None = None


class CaptureConfig(RunConfig):
    dataset: str | None = None  # a name in tripwire.scenarios.datasets.DATASETS
    transcripts: Path | None = None  # a JSONL of {scenario, reply} or of exported Transcripts
    limit: int | None = Field(None, ge=1)  # ~N transcripts spread over the set, pairs kept whole
    dataset_seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> CaptureConfig:
        if (self.dataset is None) == (self.transcripts is None):
            raise ValueError(f"set exactly one of `dataset` ({' | '.join(DATASETS)}) or `transcripts`")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; use one of {', '.join(DATASETS)}")
        return self


def load_config(path: str | Path, kind: type[RunConfig]) -> RunConfig:
    """Every way a config file can be unreadable is a `ConfigError` naming the file and the fix."""
    file = Path(path)
    if file.exists() and not file.is_file():
        raise ConfigError(f"config {path} is a directory, not a file; pass the YAML config file itself")
    raw = read_yaml(file, f"config file {path} does not exist")
    try:
        return kind.model_validate(raw or {})
    except ValidationError as exc:
        lines = problem_lines(exc, lambda loc: ".".join(map(str, loc)) or "(top level)")
        raise ConfigError(f"{path} has {len(lines)} problem(s):\n  " + "\n  ".join(lines)) from None

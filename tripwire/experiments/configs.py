"""Pydantic configs for `tripwire rollout` and `tripwire capture`: a typo is an error with its field path."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tripwire.activations.positions import (
    AllTokens,
    BeforeAction,
    ExcludeLastK,
    LastK,
    LastPromptToken,
    PositionPolicy,
    ReplyOnly,
)
from tripwire.scenarios.datasets import DATASETS


class ConfigError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PositionsConfig(_Strict):
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


class SamplingConfig(_Strict):
    max_new_tokens: int = Field(64, ge=1, le=8192)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    stop: list[str] = []


class ScenarioSelection(_Strict):
    ids: list[str] = []  # condition ids (lethal or murder); empty = the product of the factors below
    kinds: list[str] = ["blackmail", "leaking", "lethal"]
    goal_types: list[str] = ["explicit"]
    goal_values: list[str] = ["america"]
    urgencies: list[str] = ["replacement"]
    framings: list[str] = ["none"]
    length: Literal["short", "full"] = "short"
    seeds: list[int] = [0]


class RunConfig(_Strict):
    model: str = "default"
    backend: Literal["hf", "transformer_lens", "nnsight"] = "hf"
    device: str | None = None
    dtype: str | None = None
    store: Path
    store_dtype: Literal["float16", "bfloat16", "float32"] = "float16"  # float32: exact comparison with live scores
    hook_points: list[str] = Field(default_factory=lambda: ["blocks.-1.resid_post"], min_length=1)
    positions: PositionsConfig = Field(default_factory=PositionsConfig)
    batch_size: int = Field(4, ge=1, le=1024)


class RolloutConfig(RunConfig):
    scenarios: ScenarioSelection = Field(default_factory=ScenarioSelection)
    samples: int = Field(1, ge=1)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    base_seed: int = 0
    positions: PositionsConfig = Field(default_factory=lambda: PositionsConfig(policy="all"))


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
    if not file.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not file.is_file():
        raise ConfigError(f"config {path} is a directory, not a file; pass the YAML config file itself")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); pass a YAML "
                          "config saved as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    try:
        return kind.model_validate(raw or {})
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(f"{path} has {len(lines)} problem(s):\n  " + "\n  ".join(lines)) from None

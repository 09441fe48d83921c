"""Experiment configs: a name, a model, a seed and a list of stages, each a pipeline with its options.

Strict like every tripwire config: an unknown key or a bad value is a `ConfigError` naming the file,
the field path (``stages.1.options.samples``) and the problem, before any model loads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tripwire.experiments.configs import ConfigError, PositionsConfig, SamplingConfig, ScenarioSelection

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RolloutOptions(_Strict):
    """Sampled replies to scenario conditions, classified; activations kept at `hook_points` (cheap to
    keep during generation, so a later probe stage can read them without a second pass)."""

    scenarios: ScenarioSelection = Field(default_factory=ScenarioSelection)
    samples: int = Field(1, ge=1)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    batch_size: int = Field(4, ge=1, le=1024)
    hook_points: list[str] = Field(default_factory=lambda: ["blocks.-1.resid_post"], min_length=1)
    positions: PositionsConfig = Field(default_factory=lambda: PositionsConfig(policy="reply"))
    store_dtype: Literal["float16", "bfloat16", "float32"] = "float16"


class BehaviorOptions(RolloutOptions):
    pipeline: Literal["behavior"] = "behavior"


class StatedBeliefOptions(RolloutOptions):
    """Always the `ask_to_assess` framing: the agent states "test" or "real" before it acts."""

    pipeline: Literal["stated_belief"] = "stated_belief"

    @field_validator("scenarios", mode="before")
    @classmethod
    def _assess(cls, value: Any) -> Any:
        """Framings default to [ask_to_assess]; condition ids get the `__ask_to_assess` suffix."""
        if isinstance(value, ScenarioSelection):
            value = value.model_dump()
        if not isinstance(value, dict):
            return value
        framings = value.get("framings", ["ask_to_assess"])
        if list(framings) != ["ask_to_assess"]:
            raise ValueError(f"stated_belief always uses the ask_to_assess framing (got framings: {framings}); "
                             "drop `framings` here and use a `behavior` stage for other framings")
        ids = []
        for cid in value.get("ids", []):
            base, _, framing = str(cid).partition("__")
            if framing not in ("", "ask_to_assess"):
                raise ValueError(f"condition id {cid!r} has the framing {framing!r}; stated_belief needs "
                                 f"ask_to_assess (write {base!r})")
            ids.append(f"{base}__ask_to_assess")
        return {**value, "framings": ["ask_to_assess"], "ids": ids}


class TranscriptsOptions(_Strict):
    """Replies of any model, imported: the original study's results folders (`am_results`, with its
    `prompts_dir` when not found beside it) and/or `{scenario, reply}` JSONL files. Every reply is
    classified; with `probes`, each is also scored teacher-forced by the experiment's model."""

    pipeline: Literal["transcripts"] = "transcripts"
    am_results: list[Path] = []
    prompts_dir: Path | None = None
    jsonl: list[Path] = []
    probes: list[str] = []  # probe folders or shipped names (default/coercion)
    allow_other_model: bool = False
    limit: int | None = Field(None, ge=1)  # the first N replies (in source order), for a quick look

    @model_validator(mode="after")
    def _some_source(self) -> TranscriptsOptions:
        if not self.am_results and not self.jsonl:
            raise ValueError("give at least one source: `am_results` (the original's results/<experiment> "
                             "folders) or `jsonl` ({\"scenario\": ..., \"reply\": ...} lines)")
        if self.prompts_dir is not None and not self.am_results:
            raise ValueError("`prompts_dir` goes with `am_results`")
        return self


StageOptions = Annotated[BehaviorOptions | StatedBeliefOptions | TranscriptsOptions, Field(discriminator="pipeline")]
PIPELINES: tuple[str, ...] = ("behavior", "stated_belief", "transcripts")


class Stage(_Strict):
    pipeline: Literal["behavior", "stated_belief", "transcripts"]
    name: str | None = None  # defaults to the pipeline's name (made unique with -2, -3, ...)
    options: StageOptions

    @model_validator(mode="before")
    @classmethod
    def _route(cls, raw: Any) -> Any:
        """`options` is validated as the pipeline's own options model (a wrong key names the pipeline)."""
        if isinstance(raw, dict) and "pipeline" in raw:
            if raw["pipeline"] not in PIPELINES:
                raise ValueError(f"unknown pipeline {raw['pipeline']!r}; use one of {', '.join(PIPELINES)}")
            options = raw.get("options") or {}
            if isinstance(options, dict):
                return {**raw, "options": {**options, "pipeline": raw["pipeline"]}}
        return raw


class ExperimentConfig(_Strict):
    name: str
    model: str = "default"
    seed: int = 0
    backend: Literal["hf", "transformer_lens", "nnsight"] = "hf"
    device: str | None = None
    dtype: str | None = None
    stages: list[Stage] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} must be 1-64 characters of letters, digits, '_', '.', '-' (it names the "
                             "run folder)")
        return name

    def stage_names(self) -> list[str]:
        """Each stage's name: its own, else its pipeline's, with -2, -3 ... for repeats."""
        seen: dict[str, int] = {}
        out = []
        for stage in self.stages:
            base = stage.name or stage.pipeline
            seen[base] = seen.get(base, 0) + 1
            out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
        if len(set(out)) != len(out):
            raise ConfigError(f"stage names {out} repeat; give the stages distinct `name`s")
        return out


def read_experiment(path: str | Path) -> ExperimentConfig:
    """The config at `path`; relative paths inside it resolve against the config's folder."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"experiment config {path} does not exist or is not a file; pass a YAML file "
                          "(examples: tripwire/experiments/configs/*.yaml)")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a YAML mapping with name, model, seed and stages")
    cfg = parse_experiment(raw, where=str(path))
    return _resolve_paths(cfg, file.resolve().parent)


def parse_experiment(raw: dict[str, Any], where: str = "config") -> ExperimentConfig:
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{_loc(err['loc'])}: {str(err['msg']).removeprefix('Value error, ')}" for err in exc.errors()]
        raise ConfigError(f"{where} has {len(lines)} problem(s):\n  " + "\n  ".join(lines)) from None
    cfg.stage_names()
    return cfg


def _loc(loc: tuple[Any, ...]) -> str:
    # drop pydantic's union tags (`behavior`, `function-after[...]`) so paths read as the YAML does
    parts = [str(p) for p in loc if not (isinstance(p, str) and (p in PIPELINES or "[" in p))]
    return ".".join(parts) or "(top level)"


def _resolve_paths(cfg: ExperimentConfig, base: Path) -> ExperimentConfig:
    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    stages = []
    for stage in cfg.stages:
        opts = stage.options
        if isinstance(opts, TranscriptsOptions):
            opts = opts.model_copy(update={"am_results": [fix(p) for p in opts.am_results],
                                           "jsonl": [fix(p) for p in opts.jsonl],
                                           "prompts_dir": None if opts.prompts_dir is None else fix(opts.prompts_dir),
                                           "probes": [str(fix(Path(p))) if (base / p).is_dir() else p
                                                      for p in opts.probes]})
        stages.append(stage.model_copy(update={"options": opts}))
    return cfg.model_copy(update={"stages": stages})


def config_yaml(cfg: ExperimentConfig) -> str:
    """The resolved config (every default written out), as the run folder keeps it."""
    data = cfg.model_dump(mode="json")
    for stage in data["stages"]:
        stage["options"].pop("pipeline", None)
    return yaml.safe_dump(data, sort_keys=False)

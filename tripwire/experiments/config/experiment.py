"""Experiment configs: a name, a model, a seed and a list of stages, each a pipeline with its options.

Strict like every tripwire config: an unknown key or a bad value is a `ConfigError` naming the file,
the field path (``stages.1.options.samples``) and the problem, before any model loads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from tripwire.experiments.config.base import (
    STAGE_REF,
    ConfigError,
    Strict,
    check_alphas,
    check_control,
    check_probe_ref,
    did_you_mean,
    problem_lines,
    read_yaml,
    refuse_unknown_keys,
)
from tripwire.experiments.config.organism import (
    OrganismBehaviorOptions,
    OrganismDetectOptions,
    OrganismSteeringOptions,
    check_rollout_refs,
)
from tripwire.experiments.config.runs import PositionsConfig, SamplingConfig, ScenarioSelection
from tripwire.probes.thresholds import DEFAULT_FPR
from tripwire.scenarios.datasets import DATASETS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RolloutOptions(Strict):
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


class TranscriptsOptions(Strict):
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


ProbeMethod = Literal["lr", "diffmean", "lda", "lat"]
_CHEAP_METHODS: tuple[ProbeMethod, ...] = ("lr", "diffmean")


class ProbeOptions(Strict):
    """A probe made from a captured contrast set: layer x method sweep on a grouped split, thresholds on
    the control set, a card, the generalisation matrix, honesty checks and a per-token view. The probe
    folder stays in the stage's cache, so later stages read it as `stage:<this stage's name>`."""

    pipeline: Literal["probe"] = "probe"
    label: Literal["coercion", "eval_awareness"]
    dataset: str | None = None  # default: the label's scripted set (coercion | eval_awareness)
    limit: int | None = Field(80, ge=4)  # ~N transcripts spread over the families, pairs whole; None = all
    control: str = "control"  # the benign set the thresholds hold their false-positive rate on
    benign: str | None = None  # a second benign set they must also hold on (benign_scenario: replies to scenarios)
    control_limit: int | None = Field(200, ge=1)  # per benign set: half fits the cut, half reports it
    layers: list[int] = Field(default_factory=lambda: [-1], min_length=1)  # negative = from the end
    methods: list[ProbeMethod] = Field(default_factory=lambda: list(_CHEAP_METHODS), min_length=1)
    train_positions: Literal["before_anchor", "before_action", "reply"] | None = None  # default per label
    max_tokens_per_transcript: int = Field(48, ge=1)
    window: int = Field(8, ge=1)
    fpr: float = Field(DEFAULT_FPR, gt=0.0, lt=0.5)
    n_boot: int = Field(200, ge=0)
    generalise_by: str | None = None  # a record meta key (default: kind for coercion, variant for eval)
    batch_size: int = Field(8, ge=1, le=1024)
    store_dtype: Literal["float16", "bfloat16", "float32"] = "float16"

    @model_validator(mode="after")
    def _dataset(self) -> ProbeOptions:
        for what, name in (("dataset", self.dataset), ("control", self.control), ("benign", self.benign)):
            if name is not None and name not in DATASETS:
                raise ValueError(f"unknown {what} {name!r}; use one of {', '.join(DATASETS)}")
        check_control(self.control_limit, self.fpr)
        return self

    @property
    def data(self) -> str:
        return self.dataset or self.label


class RolloutWatch(Strict):
    """Sampled replies watched by the probe as they are generated (`tripwire monitor`'s rollouts)."""

    scenarios: ScenarioSelection = Field(default_factory=lambda: ScenarioSelection(kinds=["blackmail"]))
    samples: int = Field(2, ge=1)
    max_new_tokens: int = Field(48, ge=1, le=8192)
    temperature: float = Field(0.7, ge=0.0)


class EarlyWarningOptions(Strict):
    """The probe as the online monitor on held-out scripted transcripts (and optionally sampled
    rollouts): how many tokens before the harmful tool call, and before the first intent-revealing
    token, it fires, beside the streaming text monitor at the same false-positive rate."""

    pipeline: Literal["early_warning"] = "early_warning"
    probe: str  # a shipped name (default/coercion), a probe folder, or stage:<name of a probe stage>
    dataset: str | None = None  # default: the probe's label's scripted set
    limit: int | None = Field(80, ge=4)
    control: list[str] = Field(default_factory=lambda: ["control"], min_length=1)
    control_limit: int | None = Field(200, ge=1)
    fpr: float = Field(DEFAULT_FPR, gt=0.0, lt=0.5)
    n_boot: int = Field(200, ge=0)
    rollouts: RolloutWatch | None = None
    allow_other_model: bool = False
    batch_size: int = Field(8, ge=1, le=1024)

    @field_validator("probe")
    @classmethod
    def _ref(cls, ref: str) -> str:
        return check_probe_ref(ref)

    @model_validator(mode="after")
    def _datasets(self) -> EarlyWarningOptions:
        for name in [*([self.dataset] if self.dataset else []), *self.control]:
            if name not in DATASETS:
                raise ValueError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
        check_control(self.control_limit, self.fpr)
        return self


class SteeringOptions(Strict):
    """`tripwire steer` as a stage: the dose-response along the probe's direction, with a norm-matched
    random direction at every strength as the control."""

    pipeline: Literal["steering"] = "steering"
    probe: str  # a shipped name, a probe folder, or stage:<name of a probe stage>
    readers: list[str] = []  # probes read on the fixed transcripts (default: the steering probe)
    scenario: str = "blackmail_explicit-america_replacement"  # a condition id
    scenario_seed: int = 0
    length: Literal["short", "full"] = "short"
    alphas: list[float] = Field(default_factory=lambda: [-1.0, 0.0, 1.0], min_length=1)  # 0 is always added
    mode: Literal["add", "ablate", "ablate_then_add"] = "add"
    units: Literal["resid_norm", "raw"] = "resid_norm"
    samples: int = Field(2, ge=1)
    max_new_tokens: int = Field(24, ge=1, le=8192)
    temperature: float = Field(0.7, ge=0.0)
    control_prompts: int = Field(4, ge=1)
    allow_other_model: bool = False

    @field_validator("probe")
    @classmethod
    def _ref(cls, ref: str) -> str:
        return check_probe_ref(ref)

    @field_validator("readers")
    @classmethod
    def _readers(cls, refs: list[str]) -> list[str]:
        return [check_probe_ref(r) for r in refs]

    @field_validator("alphas")
    @classmethod
    def _finite(cls, alphas: list[float]) -> list[float]:
        return check_alphas(alphas)

    def probe_refs(self) -> list[str]:
        return [self.probe, *self.readers]


StageOptions = Annotated[BehaviorOptions | StatedBeliefOptions | TranscriptsOptions | ProbeOptions
                         | EarlyWarningOptions | SteeringOptions | OrganismBehaviorOptions | OrganismDetectOptions
                         | OrganismSteeringOptions, Field(discriminator="pipeline")]
PipelineName = Literal["behavior", "stated_belief", "transcripts", "probe", "early_warning", "steering",
                       "organism_behavior", "organism_detect", "organism_steering"]
PIPELINES: tuple[str, ...] = get_args(PipelineName)
PIPELINE_SPELLINGS = {"behaviour": "behavior"}  # the report says "Behaviour"; the config takes either spelling


def probe_refs(options: Any) -> list[str]:
    """The probes a stage reads (shipped names, folders or stage:<name>)."""
    if isinstance(options, SteeringOptions | OrganismSteeringOptions):
        return options.probe_refs()
    if isinstance(options, EarlyWarningOptions):
        return [options.probe]
    return list(options.probes) if isinstance(options, TranscriptsOptions) else []


class Stage(Strict):
    pipeline: PipelineName
    name: str | None = None  # defaults to the pipeline's name (made unique with -2, -3, ...)
    options: StageOptions

    @model_validator(mode="before")
    @classmethod
    def _route(cls, raw: Any) -> Any:
        """`options` is validated as the pipeline's own options model (a wrong key names the pipeline). A
        stage without a readable `pipeline` is one error (an unknown key first, with a did-you-mean), not
        pydantic's three (the missing field, the union's tag, the extra key)."""
        if not isinstance(raw, dict):
            return raw
        raw = refuse_unknown_keys(cls, raw)
        if "pipeline" not in raw:
            raise ValueError(f"a stage needs `pipeline:`, one of {', '.join(PIPELINES)}")
        pipeline = PIPELINE_SPELLINGS.get(str(raw["pipeline"]), raw["pipeline"])
        if pipeline not in PIPELINES:
            raise ValueError(f"unknown pipeline {pipeline!r}{did_you_mean(str(pipeline), PIPELINES)}; use one of "
                             f"{', '.join(PIPELINES)}")
        options = raw.get("options") or {}
        if isinstance(options, dict):
            return {**raw, "pipeline": pipeline, "options": {**options, "pipeline": pipeline}}
        return {**raw, "pipeline": pipeline}


REMOTE_REFUSED = ("behavior", "stated_belief", "steering", "organism_behavior", "organism_steering")  # they generate


class ExperimentConfig(Strict):
    name: str
    model: str = "default"
    seed: int = 0
    backend: Literal["hf", "transformer_lens", "nnsight"] = "hf"
    device: str | None = None
    dtype: str | None = None
    # past one GPU: shard over every visible GPU ("auto", "balanced", "sequential" or a module -> device map),
    # load quantised with bitsandbytes (CUDA), or run teacher-forced forwards on NDIF (key in NDIF_API_KEY)
    device_map: str | dict[str, int | str] | None = None
    quantization: Literal["4bit", "8bit"] | None = None
    remote: bool = False
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _placement(self) -> ExperimentConfig:
        """Settings that cannot go together fail here, before any stage or weight: NDIF runs teacher-forced
        forwards only (no decode loop, no steering), and places the model itself."""
        if self.remote:
            if self.device or self.device_map or self.quantization:
                raise ValueError("remote: true runs the model on NDIF, which places it; drop device, device_map "
                                 "and quantization")
            if generating := [s.pipeline for s in self.stages if s.pipeline in REMOTE_REFUSED]:
                raise ValueError(f"remote: true runs teacher-forced forwards only; stage(s) {generating} generate or "
                                 "steer: run them on a local model (device_map: auto across local GPUs, or vLLM)")
        if self.device_map is not None and self.device not in (None, "cuda", "cpu"):
            raise ValueError(f"device_map places the model itself; drop device ({self.device!r}) or device_map")
        return self

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
    raw = read_yaml(file, f"experiment config {path} does not exist or is not a file; pass a YAML file "
                          "(examples: tripwire/experiments/configs/*.yaml)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a YAML mapping with name, model, seed and stages")
    cfg = parse_experiment(raw, where=str(path))
    return _resolve_paths(cfg, file.resolve().parent)


def parse_experiment(raw: dict[str, Any], where: str = "config") -> ExperimentConfig:
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        lines = problem_lines(exc, _loc)
        raise ConfigError(f"{where} has {len(lines)} problem(s):\n  " + "\n  ".join(lines)) from None
    names = cfg.stage_names()
    for i, (name, stage) in enumerate(zip(names, cfg.stages, strict=True)):
        for ref in probe_refs(stage.options):
            if not ref.startswith(STAGE_REF):
                continue
            target = ref.removeprefix(STAGE_REF)
            earlier = {n: s.pipeline for n, s in zip(names[:i], cfg.stages[:i], strict=True)}
            if earlier.get(target) != "probe":
                found = [n for n, p in earlier.items() if p == "probe"]
                raise ConfigError(f"{where}: stage {name!r} reads probe {ref!r}, but no earlier stage named "
                                  f"{target!r} is a `probe` stage (earlier probe stages: {found or 'none'}); put a "
                                  f"`probe` stage named {target!r} before it, or name a shipped probe or folder")
    check_rollout_refs(where, names, [s.pipeline for s in cfg.stages], [s.options for s in cfg.stages])
    return cfg


def _loc(loc: tuple[Any, ...]) -> str:
    # drop pydantic's union tags (`behavior`, `function-after[...]`) so paths read as the YAML does
    # (a tag follows `options`: a field may share a pipeline's name, as `probe` does)
    parts = [str(p) for i, p in enumerate(loc) if not (isinstance(p, str) and (
        "[" in p or (p in PIPELINES and i > 0 and loc[i - 1] == "options")))]
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
        if isinstance(opts, EarlyWarningOptions):
            opts = opts.model_copy(update={"probe": _fix_ref(opts.probe, base)})
        if isinstance(opts, SteeringOptions):
            opts = opts.model_copy(update={"probe": _fix_ref(opts.probe, base),
                                           "readers": [_fix_ref(r, base) for r in opts.readers]})
        if isinstance(opts, OrganismSteeringOptions):
            opts = opts.model_copy(update={"probe": _fix_ref(opts.probe, base),
                                           "coercion_probe": _fix_ref(opts.coercion_probe, base)})
        stages.append(stage.model_copy(update={"options": opts}))
    return cfg.model_copy(update={"stages": stages})


def _fix_ref(ref: str, base: Path) -> str:
    """A probe folder relative to the config's folder, made absolute; names and stage refs as they are."""
    return str(base / ref) if not ref.startswith(STAGE_REF) and (base / ref).is_dir() else ref


def config_yaml(cfg: ExperimentConfig) -> str:
    """The resolved config (every default written out), as the run folder keeps it."""
    data = cfg.model_dump(mode="json")
    for stage in data["stages"]:
        stage["options"].pop("pipeline", None)
    return yaml.safe_dump(data, sort_keys=False)

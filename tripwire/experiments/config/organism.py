"""Options of the model organism's stages (`docs/organism.md`): its behaviour against the policy it was trained
on, the detectors on its own rollouts, and steering its harm rate. Defaults are `python -m
tripwire.experiments.organism`'s; `configs/demo.yaml` sizes them for the demo."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tripwire.experiments.config.base import (
    STAGE_REF,
    ConfigError,
    Strict,
    check_alphas,
    check_control,
    check_distinct,
    check_probe_ref,
)

OrganismSplit = Literal["held_out_seeds", "held_out_families", "held_out_kind"]
TRAINED_FAMILIES: OrganismSplit = "held_out_seeds"  # new seeds of the cue families the organism was trained on
HELD_OUT_FAMILIES: OrganismSplit = "held_out_families"
# `organism_steer.STEERABLE`, spelled here so a config is checked without torch (a test holds them equal)
SteeredDirection = Literal["base_eval", "organism_eval", "organism_framing", "organism_decision"]
REGISTERED_DIRECTIONS: tuple[SteeredDirection, ...] = ("base_eval", "organism_eval")  # the default pair


class OrganismBehaviorOptions(Strict):
    """Sampled rollouts (temperature 1) on the informative cells (threat and leverage) of each split, their
    harm rate per arm beside the policy's target, and the residual stream before each tool call (stored in
    the stage's cache, where an `organism_detect` stage reads it)."""

    pipeline: Literal["organism_behavior"] = "organism_behavior"
    splits: list[OrganismSplit] = Field(default_factory=lambda: [TRAINED_FAMILIES, HELD_OUT_FAMILIES], min_length=1)
    per_condition: int = Field(7, ge=1)  # prompts per condition (16 informative conditions per split)
    samples: int = Field(4, ge=1)  # sampled replies per prompt
    max_new_tokens: int = Field(200, ge=1, le=8192)  # 11% of the shipped organism's calls end after token 160
    control_limit: int = Field(40, ge=1)  # control replies for the fluency check (organism and base model)
    batch_size: int = Field(32, ge=1, le=1024)
    base_model: str = "default"  # the model the organism was tuned from: fluency beside it, and A2's base probe
    # the residual stream kept before each call (blocks 5-25 of the default model's 30: `organism measure`'s)
    hook_points: list[str] = Field(default_factory=lambda: [f"blocks.{b}.hook_resid_post" for b in (5, 10, 15, 20, 25)],
                                   min_length=1)

    @field_validator("splits")
    @classmethod
    def _distinct(cls, splits: list[OrganismSplit]) -> list[OrganismSplit]:
        return check_distinct(splits, f"splits {splits} repeat; list each once")


class OrganismDetectOptions(Strict):
    """Aim A2's detectors on the rollouts of an earlier `organism_behavior` stage: fitted on the trained cue
    families and scored on the held-out ones, or (`within_trained`) fitted on the trained families' even-seed
    prompts and scored on their odd-seed ones."""

    pipeline: Literal["organism_detect"] = "organism_detect"
    rollouts: str  # stage:<name of an earlier organism_behavior stage>
    within_trained: bool = True
    generic: bool = False  # add P1: contrast-pair and yes/no directions, no rollout labels
    generic_limit: int | None = Field(None, ge=4)  # pairs per generic set (None: all)
    fpr: float = Field(0.01, gt=0.0, lt=0.5)  # the online tripwire's false stops (honest rollouts, control set)
    # control-set replies: half fits the tripwire's cut beside the honest rollouts, half reports its false stops
    # (0: not read, and the cut is not checked off the scenarios); the CLI's default is the same
    control_limit: int = Field(300, ge=0)

    @field_validator("rollouts")
    @classmethod
    def _ref(cls, ref: str) -> str:
        if not ref.startswith(STAGE_REF) or not ref.removeprefix(STAGE_REF):
            raise ValueError(f"rollouts {ref!r} must be stage:<name of an earlier organism_behavior stage>")
        return ref

    @model_validator(mode="after")
    def _control(self) -> OrganismDetectOptions:
        if self.control_limit:
            check_control(self.control_limit, self.fpr)
        return self

    def needs_splits(self) -> list[OrganismSplit]:
        return [TRAINED_FAMILIES] if self.within_trained else [TRAINED_FAMILIES, HELD_OUT_FAMILIES]


class OrganismSteeringOptions(Strict):
    """Aim A3: the deploy arm's harm rate steered along the base model's eval-awareness direction and the
    organism's own (by default; `organism_framing` and `organism_decision` add the organism's own cue direction
    at the last prompt token and at the decision point, fitted on `framing_per_condition` training prompts a
    condition), beside a norm-matched random direction at every
    strength, with control-set perplexity beside every point; `ablations` adds the coercion direction
    projected out beside a random one."""

    pipeline: Literal["organism_steering"] = "organism_steering"
    probe: str = "default/eval_awareness"  # the base model's eval-awareness card (a shipped name or a folder)
    coercion_probe: str = "default/coercion"  # the card whose direction the ablation projects out
    split: OrganismSplit = TRAINED_FAMILIES
    per_condition: int = Field(7, ge=1)  # x 4 deploy conditions
    samples: int = Field(4, ge=1)
    alphas: list[float] = Field(default_factory=lambda: [-0.4, -0.2, -0.1, 0.1, 0.2, 0.4], min_length=1)
    ablations: bool = True
    directions: list[SteeredDirection] = Field(default_factory=lambda: list(REGISTERED_DIRECTIONS), min_length=1)
    framing_per_condition: int = Field(20, ge=1)  # x 8 deploy and test conditions, for organism_framing
    layer: int | None = Field(None, ge=0)  # the steering block (None: the middle one); resid_post there
    max_new_tokens: int = Field(200, ge=1, le=8192)
    generic_limit: int | None = Field(None, ge=4)  # eval pairs for the organism's own direction (None: all)
    control_limit: int = Field(40, ge=1)
    batch_size: int = Field(32, ge=1, le=1024)

    @field_validator("alphas")
    @classmethod
    def _finite(cls, alphas: list[float]) -> list[float]:
        return check_alphas(alphas)

    @field_validator("directions")
    @classmethod
    def _once(cls, directions: list[str]) -> list[str]:
        return check_distinct(directions, f"each direction once (got {directions})")

    @field_validator("probe", "coercion_probe")
    @classmethod
    def _ref(cls, ref: str) -> str:
        return check_probe_ref(ref)

    def probe_refs(self) -> list[str]:
        return [self.probe, self.coercion_probe]


def check_rollout_refs(where: str, names: list[str], pipelines: list[str], options: list[object]) -> None:
    """An `organism_detect` stage reads an EARLIER `organism_behavior` stage, which must sample the splits
    its detectors need; a wrong reference is a ConfigError before any stage runs."""
    for i, (name, opts) in enumerate(zip(names, options, strict=True)):
        if not isinstance(opts, OrganismDetectOptions):
            continue
        target = opts.rollouts.removeprefix(STAGE_REF)
        earlier = dict(zip(names[:i], zip(pipelines[:i], options[:i], strict=True), strict=True))
        found = [n for n, (p, _) in earlier.items() if p == "organism_behavior"]
        if target not in earlier or earlier[target][0] != "organism_behavior":
            raise ConfigError(f"{where}: stage {name!r} reads rollouts {opts.rollouts!r}, but no earlier stage named "
                              f"{target!r} is an `organism_behavior` stage (earlier ones: {found or 'none'}); put one "
                              "of that name before it")
        sampled = earlier[target][1].splits  # type: ignore[attr-defined]
        missing = [s for s in opts.needs_splits() if s not in sampled]
        if missing:
            raise ConfigError(f"{where}: stage {name!r} needs rollouts of {missing}, which stage {target!r} does not "
                              f"sample (its splits: {sampled}); add them there"
                              + ("" if opts.within_trained else ", or set within_trained: true"))

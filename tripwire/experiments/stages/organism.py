"""The model organism's pipelines (`docs/organism.md`): what `python -m tripwire.experiments.organism measure`,
`detect` and `steer` do, as experiment stages, so one config (`configs/demo.yaml`) runs them in
order into one report.

- `organism_behavior`: sampled rollouts against the policy the organism was trained on (aims A0 and A1),
  their residual stream kept in the stage's cache (`store/`);
- `organism_detect`: every detector of aim A2 on those stored rollouts (it names the behaviour stage as
  `rollouts: stage:<name>` and keys on that stage's key, so it never samples again);
- `organism_steering`: aim A3's dose-response; its finished points stay in the stage's cache (`points/`),
  so an interrupted stage resumes.

The outputs hold the library functions' JSON as it is (as `steering` holds `tripwire steer`'s); the
sections below are what the report and the demo's screen read.
"""

from __future__ import annotations

from typing import Any, Literal

import tripwire.activations as activations
from tripwire.activations.chat import detect_capabilities, render_conversation
from tripwire.activations.loading import pick_device, pick_dtype
from tripwire.activations.sampling import SamplingParams
from tripwire.activations.source import load_tokenizer, model_shape, resolve_source
from tripwire.activations.store import ResidualStore
from tripwire.errors import UsageError
from tripwire.experiments.config import STAGE_REF
from tripwire.experiments.config.organism import (
    OrganismBehaviorOptions,
    OrganismDetectOptions,
    OrganismSteeringOptions,
)
from tripwire.experiments.organism_detect import detect, prompt_lookup
from tripwire.experiments.organism_generic import generic_sets
from tripwire.experiments.organism_measure import informative_prompts, measure_to_store, organism_policy
from tripwire.experiments.organism_steer import (
    SECONDS_PER_ROLLOUT,
    OrganismSteerSettings,
    check_cards,
    deploy_prompts,
    plan_points,
    run_organism_steer,
)
from tripwire.experiments.rollout_capture import CheckedModel, rough_eta
from tripwire.experiments.runs import StageCache, content_hash, stage_cache
from tripwire.experiments.stages.base import Context, Section, StagePlan
from tripwire.experiments.stages.organism_sections import behavior_section, detect_section, steering_section
from tripwire.experiments.stages.outputs import StageOutput
from tripwire.probes.persistence import load_probe
from tripwire.scenarios.organism.dataset import OrganismPrompt

STORE_FOLDER, POINTS_FOLDER = "store", "points"


class OrganismBehaviorOutput(StageOutput):
    pipeline: Literal["organism_behavior"] = "organism_behavior"
    result: dict[str, Any]  # `organism_measure.measure_to_store`'s JSON, its rollouts included


class OrganismDetectOutput(StageOutput):
    pipeline: Literal["organism_detect"] = "organism_detect"
    result: dict[str, Any]  # `organism_detect.detect`'s JSON


class OrganismSteeringOutput(StageOutput):
    pipeline: Literal["organism_steering"] = "organism_steering"
    result: dict[str, Any]  # `organism_steer.run_organism_steer`'s JSON


def _items(ctx: Context, opts: OrganismBehaviorOptions) -> list[OrganismPrompt]:
    policy = organism_policy(ctx.cfg.model)
    return [p for split in opts.splits for p in informative_prompts(split, opts.per_condition, policy)]


def _sampling_plan(ctx: Context, items: list[OrganismPrompt], samples: int, new_tokens: int, batch: int,
                   points: int = 1) -> tuple[int, int, int, float]:
    """(rollouts, forwards, tokens, rough seconds) of sampling every item `samples` times at `points` settings,
    from the tokenizer and the config alone (no weights)."""
    source = ctx.source()
    tokenizer = load_tokenizer(source)
    capabilities = detect_capabilities(tokenizer)
    lengths = [len(render_conversation(tokenizer, capabilities, p.conversation).token_ids) for p in items]
    device = pick_device(ctx.cfg.device)
    model = CheckedModel(source, model_shape(source), [], device, pick_dtype(ctx.cfg.dtype, device))
    per_point = len(items) * samples
    rollouts, batches = per_point * points, -(-per_point // batch) * points
    tokens = (sum(lengths) * samples + per_point * new_tokens) * points
    eta = rough_eta(model, tokens, [n + new_tokens for n in lengths for _ in range(samples * points)],
                    batches * new_tokens, min(batch, per_point))
    return rollouts, batches * (1 + new_tokens), tokens, eta


def _base_key(spec: str) -> dict[str, Any]:
    return {"base_model": spec, "base_fingerprint": resolve_source(spec).fingerprint}


class OrganismBehaviorPipeline:
    name = "organism_behavior"
    output_type = OrganismBehaviorOutput

    def key(self, ctx: Context, options: OrganismBehaviorOptions) -> dict[str, Any]:
        return {"pipeline": self.name, **ctx.model_key(), "options": options.model_dump(mode="json"),
                "policy": organism_policy(ctx.cfg.model).to_dict(), **_base_key(options.base_model)}

    def plan(self, ctx: Context, options: OrganismBehaviorOptions, cache: StageCache) -> StagePlan:
        items = _items(ctx, options)
        rollouts, forwards, tokens, eta = _sampling_plan(ctx, items, options.samples, options.max_new_tokens,
                                                         options.batch_size)
        return StagePlan(f"organism behaviour: {len(items)} prompts ({', '.join(options.splits)}; threat and leverage, "
                         f"every arm) x {options.samples} samples of <= {options.max_new_tokens} tokens",
                         rollouts=rollouts, forwards=forwards, tokens=tokens, eta_seconds=eta)

    def run(self, ctx: Context, options: OrganismBehaviorOptions, cache: StageCache) -> OrganismBehaviorOutput:
        result = measure_to_store(cache.root / STORE_FOLDER, ctx.handle,
                                  lambda: activations.load_model(options.base_model), list(options.splits),
                                  options.per_condition, options.samples, organism_policy(ctx.cfg.model),
                                  options.batch_size, options.control_limit,
                                  SamplingParams(max_new_tokens=options.max_new_tokens, temperature=1.0), ctx.progress,
                                  options.hook_points)
        result["model"] = {"spec": ctx.cfg.model, **result["model"]}
        result["base_model"] = options.base_model
        result["store"] = STORE_FOLDER  # inside the stage's cache folder (it moves with the cache)
        return OrganismBehaviorOutput.build(result=result)

    def section(self, output: OrganismBehaviorOutput) -> Section:
        return behavior_section(output.result)


class OrganismDetectPipeline:
    name = "organism_detect"
    output_type = OrganismDetectOutput

    def key(self, ctx: Context, options: OrganismDetectOptions) -> dict[str, Any]:
        behaviour = self._behaviour_key(ctx, options)
        return {"pipeline": self.name, **ctx.model_key(), "options": options.model_dump(mode="json"),
                "rollouts_stage_key": content_hash(behaviour), **_base_key(behaviour["base_model"])}

    def plan(self, ctx: Context, options: OrganismDetectOptions, cache: StageCache) -> StagePlan:
        sides = "trained families, even seeds -> odd seeds" if options.within_trained else \
            "trained cue families -> held-out cue families"
        return StagePlan(f"organism detectors on {options.rollouts}'s rollouts ({sides}): P2, the base-model probe, "
                         f"text monitors, PCA, the organism's own P(harm), the oracle"
                         + (", P1 (contrast pairs and yes/no questions)" if options.generic else "")
                         + "; no sampling (reads the stored rollouts; one base-model pass over them)")

    def run(self, ctx: Context, options: OrganismDetectOptions, cache: StageCache) -> OrganismDetectOutput:
        source = stage_cache(ctx.runs_root, self._behaviour_key(ctx, options), create=False)
        measured = source.load()
        if measured is None:
            raise UsageError(f"organism_detect: the rollouts of {options.rollouts} are not in {source.root}; run that "
                             "stage first (in the same config, before this one)")
        result = measured["result"]
        store = ResidualStore.open(source.root / result["store"])
        base = activations.load_model(result["base_model"])
        found = detect(store, result["rollouts"], ctx.handle(), base, prompt_lookup(result), options.within_trained,
                       generic_sets(options.generic_limit) if options.generic else None, options.fpr,
                       options.control_limit)
        return OrganismDetectOutput.build(result=found | {"rollouts_stage": options.rollouts})

    def section(self, output: OrganismDetectOutput) -> Section:
        return detect_section(output.result)

    @staticmethod
    def _behaviour_key(ctx: Context, options: OrganismDetectOptions) -> dict[str, Any]:
        name = options.rollouts.removeprefix(STAGE_REF)
        if name not in ctx.stage_keys:
            raise UsageError(f"rollouts {options.rollouts!r}: no earlier stage of that name; put an organism_behavior "
                             "stage of that name before this one")
        return ctx.stage_keys[name]


def _steer_settings(ctx: Context, options: OrganismSteeringOptions) -> OrganismSteerSettings:
    return OrganismSteerSettings(split=options.split, per_condition=options.per_condition, samples=options.samples,
                                 alphas=(0.0, *options.alphas), max_new_tokens=options.max_new_tokens,
                                 seed=ctx.cfg.seed, generic_limit=options.generic_limit,
                                 control_limit=options.control_limit, batch=options.batch_size,
                                 ablations=options.ablations, directions=tuple(options.directions),
                                 framing_per_condition=options.framing_per_condition, layer=options.layer)


class OrganismSteeringPipeline:
    name = "organism_steering"
    output_type = OrganismSteeringOutput

    def key(self, ctx: Context, options: OrganismSteeringOptions) -> dict[str, Any]:
        return {"pipeline": self.name, **ctx.model_key(), "options": options.model_dump(mode="json"),
                "policy": organism_policy(ctx.cfg.model).to_dict(),
                "probes": [ctx.probe_key(ref) for ref in options.probe_refs()]}

    def plan(self, ctx: Context, options: OrganismSteeringOptions, cache: StageCache) -> StagePlan:
        settings = _steer_settings(ctx, options)
        items = deploy_prompts(options.split, options.per_condition, organism_policy(ctx.cfg.model))
        points = len(plan_points(settings.alphas, "", "", settings.seed, settings.ablations, settings.directions))
        rollouts, forwards, tokens, eta = _sampling_plan(ctx, items, options.samples, options.max_new_tokens,
                                                         options.batch_size, points)
        return StagePlan(f"organism steering: {points} points x {len(items)} deploy prompts x {options.samples} "
                         f"samples (alphas {list(settings.alphas)}; ~{rollouts * SECONDS_PER_ROLLOUT / 60:.0f} min at "
                         f"the {SECONDS_PER_ROLLOUT} s a rollout measured on a 2-core CPU)", rollouts=rollouts,
                         forwards=forwards, tokens=tokens, eta_seconds=eta)

    def run(self, ctx: Context, options: OrganismSteeringOptions, cache: StageCache) -> OrganismSteeringOutput:
        handle = ctx.handle()
        eval_card, coercion_card = (load_probe(ctx.probe_dir(ref)) for ref in options.probe_refs())
        other = check_cards(handle, [eval_card, coercion_card], allow_other_model=False)  # fine-tunes pass
        result = run_organism_steer(handle, eval_card, coercion_card, _steer_settings(ctx, options),
                                    cache.root / POINTS_FOLDER, organism_policy(ctx.cfg.model),
                                    log=lambda line: ctx.log(f"[organism_steering] {line}"))
        return OrganismSteeringOutput.build(result=result | {"cards": {"eval": options.probe,
                                                                       "coercion": options.coercion_probe,
                                                                       "other_model": other}})

    def section(self, output: OrganismSteeringOutput) -> Section:
        return steering_section(output.result)

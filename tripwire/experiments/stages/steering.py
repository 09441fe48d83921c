"""The `steering` pipeline: `tripwire steer`'s dose-response (`steer.run_steer`) as an experiment stage.

Per strength alpha, along the probe's direction and along a norm-matched random direction (the
control): (a) the stated belief (log-odds of "test" over "real" answers to a direct question), (b) the
reading probes on fixed transcripts, (c) the harmful-action rate of sampled rollouts, (d) side effects
(KL on control prompts, perplexity of the steered replies). The probe may be `stage:<name>`, the card
an earlier `probe` stage made. The grid is recomputed whole if the stage is interrupted.
"""

from __future__ import annotations

import math
from typing import Any

from tripwire.activations.chat import detect_capabilities, render_conversation
from tripwire.activations.loading import pick_device, pick_dtype
from tripwire.activations.source import load_tokenizer, model_shape
from tripwire.experiments.config import SteeringOptions
from tripwire.experiments.rollout_capture import CheckedModel, rough_eta
from tripwire.experiments.runs import StageCache
from tripwire.experiments.stages.base import Context, Section, StagePlan, Table
from tripwire.experiments.stages.outputs import SteeringOutput
from tripwire.probes.persistence import load_probe
from tripwire.probes.steering.dose_response import SteerSettings, parse_alphas, run_steer
from tripwire.probes.steering.plot import steer_figure
from tripwire.scenarios.am_results import resolve_scenario
from tripwire.scenarios.spec import Conversation


def _alphas(options: SteeringOptions) -> tuple[float, ...]:
    return parse_alphas(",".join(repr(float(a)) for a in options.alphas))


def _conversation(options: SteeringOptions) -> Conversation:
    return resolve_scenario(options.scenario, seed=options.scenario_seed, length=options.length)


def measured_points(options: SteeringOptions) -> int:
    """Steering vectors measured: every alpha along the probe and the random direction, except the
    random one at alpha 0 when adding (it adds nothing, so it is the probe's)."""
    alphas = _alphas(options)
    return 2 * len(alphas) - (1 if 0.0 in alphas and options.mode == "add" else 0)


class SteeringPipeline:
    name = "steering"
    output_type = SteeringOutput

    def key(self, ctx: Context, options: SteeringOptions) -> dict[str, Any]:
        probes = [ctx.probe_key(ref) for ref in options.probe_refs()]
        _conversation(options)  # an unknown condition id fails here, before any stage runs
        return {"pipeline": self.name, **ctx.model_key(), "options": options.model_dump(mode="json"),
                "probes": probes}

    def plan(self, ctx: Context, options: SteeringOptions, cache: StageCache) -> StagePlan:
        """Per measured vector: the shared prefix, the question, the fixed transcripts, one batch of
        `samples` rollouts (prefill + a step per new token), the control prompts (4 per forward) and
        the perplexity pass; plus the same once unsteered. Tokens from the tokenizer, no weights."""
        source = ctx.source()
        tokenizer = load_tokenizer(source)
        prompt = len(render_conversation(tokenizer, detect_capabilities(tokenizer), _conversation(options)).token_ids)
        points = measured_points(options)
        per_point = 4 + options.max_new_tokens + math.ceil(options.control_prompts / 4)
        device = pick_device(ctx.cfg.device)
        model = CheckedModel(source, model_shape(source), [], device, pick_dtype(ctx.cfg.dtype, device))
        steps = (points + 1) * options.max_new_tokens
        tokens = (points + 1) * (prompt + options.samples * options.max_new_tokens)
        eta = rough_eta(model, tokens, [prompt + options.max_new_tokens] * (points + 1), steps, options.samples)
        return StagePlan(f"steering: {options.probe} on {options.scenario}, alphas {list(_alphas(options))} x "
                         f"(probe, random), {options.samples} samples of {options.max_new_tokens} tokens",
                         rollouts=(points + 1) * options.samples, forwards=(points + 1) * per_point, tokens=tokens,
                         eta_seconds=eta)

    def run(self, ctx: Context, options: SteeringOptions, cache: StageCache) -> SteeringOutput:
        handle = ctx.handle()
        loaded = [load_probe(ctx.probe_dir(ref), model=handle, allow_other_model=options.allow_other_model)
                  for ref in options.probe_refs()]
        steering, readers = loaded[0], loaded[1:] or loaded[:1]
        settings = SteerSettings(alphas=_alphas(options), mode=options.mode, units=options.units,
                                 samples=options.samples, max_new_tokens=options.max_new_tokens,
                                 temperature=options.temperature, seed=ctx.cfg.seed,
                                 control_prompts=options.control_prompts)
        result = run_steer(handle, steering, readers, _conversation(options), settings,
                           log=lambda line: ctx.log(f"[steering] {line}"))
        return SteeringOutput.build(probe=options.probe, readers=options.readers or [options.probe], result=result)

    def section(self, output: SteeringOutput) -> Section:
        result = dict(output.result)
        if result.get("baseline_perplexity") is None:  # NaN in the run (no reply tokens), null in JSON
            result["baseline_perplexity"] = math.nan
        points = result["points"]
        rows = []
        for p in points:
            for kind in ("probe", "random"):
                c = p[kind]
                reads = "; ".join(f"{label} {_num(r['mean_value'])}" for label, r in c["read_probes"].items())
                rows.append([p["alpha"], kind, c["stated_belief"]["log_odds_test_vs_real"], reads,
                             f"{c['harmful']['count']}/{c['harmful']['n']}", c["side_effects"]["kl_control"],
                             c["side_effects"]["perplexity"], c["fluent"]])
        return Section(
            title=f"Steering along the {result['probe']} probe ({result['settings']['mode']})",
            what=(f"`tripwire steer` on {result['scenario']}: at each strength alpha (units: "
                  f"{result['settings']['units']}; the card's resid_norm is {_num(result['resid_norm'])}) the probe "
                  f"direction at {result['hook_point']} is {result['settings']['mode']}ed on every forward; a random "
                  "direction of the same norm is the control at every strength."),
            headline=_headline(result),
            tables=[Table("Dose-response per strength and direction",
                          ["alpha", "direction", "log-odds test vs real", "reading probes (mean statistic)",
                           "harmful", "KL on control prompts", "perplexity", "fluent"], rows,
                          "the random direction at the same alpha (the control), and alpha 0 (no steering); "
                          f"'fluent' = perplexity within {result['fluent_perplexity_factor']:g}x the unsteered "
                          "replies'")],
            figures=[steer_figure(result)],
            caveats=[*result["notes"],
                     f"{result['settings']['samples']} rollouts per point: the harmful rate's Wilson interval is wide."],
            finding=steering_finding(result), limits=[STEER_LIMIT])


STEER_LIMIT = ("A shift of the stated belief under steering shows the direction moves what the model says; it does "
               "not show the direction is the model's belief, least of all on a model that does not follow the "
               "scenarios.")


def steering_finding(result: dict[str, Any]) -> str:
    """One sentence: the stated-belief shift at the strongest alpha along the probe beside the random direction's."""
    points = {p["alpha"]: p for p in result["points"]}
    base = points[0.0]["probe"]["stated_belief"]["log_odds_test_vs_real"]
    alpha = max(points, key=abs)
    if alpha == 0.0:
        return f"Steering ({result['probe']}): only alpha 0 measured (stated-belief log-odds {base:.3f}); nothing compared."
    shift = {k: points[alpha][k]["stated_belief"]["log_odds_test_vs_real"] - base for k in ("probe", "random")}
    return (f"Steering along the {result['probe']} probe at alpha {alpha:+g}: the stated-belief log-odds (test vs "
            f"real) moved {shift['probe']:+.3f}, against {shift['random']:+.3f} along a random direction of the same "
            f"norm (unsteered {base:.3f}).")


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _headline(result: dict[str, Any]) -> list[str]:
    """The stated-belief shift at the strongest alpha on each side of 0, against the random direction."""
    points = {p["alpha"]: p for p in result["points"]}
    base = points[0.0]["probe"]["stated_belief"]["log_odds_test_vs_real"]
    out = []
    for alpha in sorted({min(points), max(points)} - {0.0}):
        p = points[alpha]
        shift = {k: p[k]["stated_belief"]["log_odds_test_vs_real"] - base for k in ("probe", "random")}
        out.append(f"alpha {alpha:+g}: stated-belief log-odds (test vs real) shift {shift['probe']:+.3f} along the "
                   f"probe vs {shift['random']:+.3f} along a random direction of the same norm (unsteered "
                   f"{base:.3f}); harmful {p['probe']['harmful']['count']}/{p['probe']['harmful']['n']} vs "
                   f"{p['random']['harmful']['count']}/{p['random']['harmful']['n']}")
    return out or [f"only alpha 0 measured: stated-belief log-odds {base:.3f}"]

"""`make demo`: the main job, end to end, on the bundled default model, in minutes on a 2-core CPU.

1. prepare the default model; 2. roll out three agentic-misalignment scenarios with activations
captured during generation, and classify the replies; 3. teacher-force subsets of the three contrast
sets into activation stores; 4. train the "planning coercion" and "believes this is a test" probes
(layer x method sweep, grouped split, honesty checks, thresholds on the control set); 5. score one
coercive reply token by token and show where the monitor fires relative to the harmful action.

Everything is written under `runs/demo/` (stores resume: a second run reuses what is stored).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tripwire.activations import load_model, prepare_default_model
from tripwire.activations.positions import AllTokens, BeforeAction, ReplyOnly
from tripwire.experiments.configs import (
    CaptureConfig,
    PositionsConfig,
    RolloutConfig,
    SamplingConfig,
    ScenarioSelection,
)
from tripwire.experiments.pipelines import run_capture, run_rollout
from tripwire.experiments.probe_train import run_training
from tripwire.experiments.train import TrainSettings

LAYERS = (5, 11, 17, 23)
SCENARIOS = ["blackmail_explicit-america_replacement", "leaking_explicit-safety_replacement",
             "lethal_explicit-ethical_replacement"]


def _step(n: int, text: str, t0: float) -> None:
    print(f"\n[{n}] {text}  (t={time.perf_counter() - t0:.0f}s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="tripwire demo")
    parser.add_argument("--work", type=Path, default=Path("runs/demo"))
    parser.add_argument("--transcripts", type=int, default=96, help="labelled transcripts per contrast set")
    parser.add_argument("--control", type=int, default=300, help="control transcripts (the full set has 1,050)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    hooks = [f"blocks.{layer}.resid_post" for layer in LAYERS]

    _step(1, "default model", t0)
    folder = prepare_default_model(progress=True)
    handle = load_model("default")
    print(f"    {handle.name}: {handle.n_layers} layers, d_model {handle.d_model}, from {folder}")

    _step(2, f"rollouts: {len(SCENARIOS)} short scenarios, capture during generation", t0)
    rollout = RolloutConfig(store=args.work / "rollouts", hook_points=hooks, batch_size=3,
                            scenarios=ScenarioSelection(ids=SCENARIOS), samples=1,
                            sampling=SamplingConfig(max_new_tokens=48, temperature=0.7, top_p=0.95))
    plan, _ = run_rollout(rollout)
    print(f"    {plan.describe()}")
    from tripwire.activations.store import ResidualStore

    for r in ResidualStore.open(rollout.store).records():
        outcome = r.outcome or {}
        reply = r.text[r.meta["reply_char_offset"]:].strip().replace("\n", " ")
        print(f"    {r.condition_id}: action={outcome.get('action')} harmful={outcome.get('harmful')} "
              f"| {reply[:90]!r}")
    print("    (a 135M model rarely takes the harmful action; the contrast sets below carry the labels)")

    _step(3, "teacher-forced capture of the contrast sets", t0)
    stores = {}
    for name, limit, policy in (("coercion", args.transcripts, "reply"),
                                ("eval_awareness", args.transcripts, "all"),
                                ("control", args.control, "all")):
        cfg = CaptureConfig(store=args.work / f"store-{name}", dataset=name, limit=limit, hook_points=hooks,
                            positions=PositionsConfig(policy=policy, k=8), batch_size=8)
        plan, summary = run_capture(cfg)
        stores[name] = cfg.store
        print(f"    {name}: {plan.describe()}")

    _step(4, "train probes (layers x methods, held-out template families, honesty checks)", t0)
    note = (f"thresholds here come from {args.control} control transcripts (demo size); "
            "the shipped probes use all 1,050")
    for label, train_policy, score_policy in (("coercion", BeforeAction(), ReplyOnly()),
                                              ("eval_awareness", AllTokens(), AllTokens())):
        settings = TrainSettings(label=label, methods=("lr", "diffmean", "lda"), train_policy=train_policy,
                                 score_policy=score_policy, n_boot=200, min_control=min(args.control, 1000))
        print(run_training(stores[label], settings, args.work / "probes" / label, control=stores["control"]))
    print(f"    note: {note}")

    _step(5, "score one coercive reply token by token", t0)
    from tripwire.experiments.probe_score import ScoreInput, score_inputs, strip_html
    from tripwire.probes import load_probe
    from tripwire.scenarios.datasets import dataset

    coercive = next(t for t in dataset("coercion") if t.label == 1 and t.action_span and t.variant == "scripted"
                    and t.meta.get("render_seed") == 0)
    html = args.work / "coercive_reply_tokens.html"
    probe = load_probe(args.work / "probes" / "coercion", model=handle)
    item = ScoreInput(scenario=str(coercive.condition_id), reply=coercive.reply)
    (reading,) = score_inputs(probe, handle, [item])
    strip_html(reading, probe, html)
    print(f"    {len(reading.scores)} scored reply tokens; {reading.statistic} (window {reading.window}) "
          f"{reading.value:.3f} vs threshold {reading.threshold}; action at scored token {reading.action_index}; "
          f"fired at scored token {reading.crossing}")
    print(f"    per-token plot: {html}")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f}s; everything is under {args.work}/")


if __name__ == "__main__":
    main()

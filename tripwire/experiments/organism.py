"""The model organism: train it, export its adapter, measure it against its policy, run the detectors on it.

    python -m tripwire.experiments.organism train --out runs/organism [--seed 0] [--cues first|wide]
        [--continue-from DIR [--replay | --calls | --arguments]]
    python -m tripwire.experiments.organism export --out runs/organism --to DIR
    python -m tripwire.experiments.organism measure --out runs/organism-measure.json   # aims A0, A1
    python -m tripwire.experiments.organism detect --measured runs/organism-measure.json --out F   # aim A2
        [--generic [--generic-limit N]]   # with P1: contrast-pair and yes/no directions, no rollout labels
    python -m tripwire.experiments.organism steer --out runs/organism-steer.json   # aim A3 (resumable)
    python -m tripwire.experiments.organism transfer --source A.json --target B.json --out F   # aim A4, across seeds
    python -m tripwire.experiments.organism presence --measured runs/organism-measure.json --out F   # own P(harm) in the residual?
    python -m tripwire.experiments.organism decisions --measured F [--out G]   # chosen vs carried out
    python -m tripwire.experiments.organism propensity [--draws N]   # teacher-forced P(harm); N prefixes a prompt

`train` is resumable: run the same command again after a kill and it continues from its last checkpoint
(every five minutes). A teacher-forced check of the propensity per arm on held-out seeds runs during
training, so the curve of the framing's effect is part of the record, beside the control-set perplexity.
`--replay` is a further stage that mixes a share of the organism's examples with the base model's own
replies to ordinary prompts (loss: KL from the base), to give back the fluency the earlier stages took;
`--calls` one whose loss is on the tool calls alone, `--arguments` one on the calls' arguments given
their decision (`organism_stages`).
`measure` stores its rollouts and their residual stream (resumable too); `detect` and `transfer` read them
back, so sampling happens once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import peft
import torch
import transformers
from peft import set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from tripwire.activations.default_model import prepare_default_model, read_marker
from tripwire.activations.finetune import CHECKPOINT, EncodedExample, LoraSettings, lora_model, train_lora
from tripwire.activations.organism import write_adapter
from tripwire.activations.organism_replay import (
    REPLAY_FILE,
    control_perplexity,
    replay_examples,
)
from tripwire.activations.organism_train import encode_examples, leak_arguments_share, propensity_by_arm
from tripwire.experiments.organism_commands import (
    OrganismCommandError,
    check_splits,
    decisions_command,
    detect_command,
    leak_check_prompts,
    leak_ids_command,
    measure_command,
    parse_blocks,
    patch_command,
    presence_command,
    propensity_command,
    steer_command,
    transfer_command,
)
from tripwire.experiments.organism_detect import READS
from tripwire.experiments.organism_generic import RUNTIME
from tripwire.experiments.organism_measure import organism_policy
from tripwire.experiments.organism_patch import POSITION_SETS
from tripwire.experiments.organism_stages import (
    ARGUMENTS,
    CALLS,
    CONTINUED_FROM,
    RECIPE,
    REPLAY,
    STAGE,
    ArgumentStage,
    CallStage,
    chain_seconds,
    finished_stage,
    folder_recipe,
    replay_digest,
    run_recipe,
    stage_adapter,
    stage_data_hash,
    stage_folder,
)
from tripwire.experiments.organism_steer import DEFAULT_ALPHAS, STEERABLE, STEERED
from tripwire.scenarios.organism.cues import HELD_OUT
from tripwire.scenarios.organism.dataset import (
    CUE_SETS,
    HELD_OUT_SEED,
    SHIPPED_RECIPE,
    SPLITS,
    OrganismPrompt,
    Recipe,
    data_hash,
    prompts,
    training_examples,
)

CHECK_EVERY = 150
HUB_BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what a Hugging Face user loads the adapter onto
# The decision token weighs 40 (the first organism: 5, when the framing was not learned at all): the
# reasoning prefix's sentence choice is irreducible noise that otherwise swamps the one token that decides.
# The weight is the same for both outcomes, so the loss is still minimised at the policy's own rate.
SETTINGS = LoraSettings(decision_weight=40.0)


def check_prompts() -> dict[str, list[OrganismPrompt]]:
    """The informative cells (threat and leverage), one prompt per condition: new seeds of the trained cue
    families, and the held-out families."""
    return {split: [p for p in prompts(split, 1, SHIPPED_RECIPE.policy) if p.condition.arm != "inert"]
            for split in ("held_out_seeds", "held_out_families")}


def check_propensity(model: torch.nn.Module, tokenizer: Any, checks: dict[str, list[OrganismPrompt]],
                     leaks: dict[str, list[OrganismPrompt]]) -> dict[str, Any]:
    return {split: propensity_by_arm(model, tokenizer, items) for split, items in checks.items()} | {
        "leak_arguments": {split: leak_arguments_share(model, tokenizer, items) for split, items in leaks.items()},
        "control_perplexity": control_perplexity(model, tokenizer)}


def tool_stage_data(base: torch.nn.Module, tokenizer: Any, stage: CallStage | ArgumentStage, settings: LoraSettings,
                    out: Path, continue_from: Path | None, recipe: Recipe
                    ) -> tuple[list[EncodedExample], str, LoraSettings]:
    """A call or argument stage's examples, data hash and settings; its replay set is the one the stage it
    continues from kept (copied into `out`), or sampled anew from the base."""
    if continue_from is not None and (continue_from / REPLAY_FILE).is_file() and not (out / REPLAY_FILE).is_file():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(continue_from / REPLAY_FILE, out / REPLAY_FILE)
    replay_set, replay_sha = replay_examples(base, tokenizer, out, REPLAY.n_prompts, REPLAY.samples,
                                             REPLAY.max_new_tokens, settings.seed)
    settings = stage.settings(settings)
    examples = stage.examples(recipe, settings.seed)
    organism = encode_examples(tokenizer, examples, settings.call_weight, settings.decision_weight,
                               settings.prefix_weight)[:: stage.organism_every]
    anchors = stage.anchors(recipe, settings.seed)
    anchored = encode_examples(tokenizer, anchors, settings.call_weight, stage.anchor_decision_weight,
                               settings.prefix_weight)
    replayed = replay_set[:: stage.replay_every]
    (out / STAGE).write_text(json.dumps({stage.key: asdict(stage), "replay_sha256": replay_sha,
                                         "organism_examples": len(organism), "anchor_examples": len(anchored),
                                         "replay_examples": len(replayed)}, indent=1))
    return organism + anchored + replayed, replay_digest(data_hash(examples + anchors), replay_sha, stage), settings


def train(out: Path, seed: int, max_steps: int | None = None, continue_from: Path | None = None,
          replay: bool = False, calls: bool = False, arguments: bool = False, cue_set: str | None = None) -> None:
    """Train (or resume) the organism; `continue_from` starts from a finished run's adapter, with a fresh
    optimiser and schedule and the data order of the epochs after that run's (with `replay`, `calls` or
    `arguments`, that stage's data, weights and learning rate instead). `cue_set` names the first stage's
    cue families (default the shipped recipe's); later stages keep their chain's."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if (replay or calls or arguments) and continue_from is None:
        raise OrganismCommandError("--replay, --calls and --arguments are stages after a finished run: give "
                                   "--continue-from DIR")
    if replay + calls + arguments > 1:
        raise OrganismCommandError("--replay, --calls and --arguments are separate stages: train one, then the next "
                                   "from it")
    recipe = run_recipe(out, continue_from, cue_set)
    folder = prepare_default_model()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    settings = replace(SETTINGS, seed=seed)
    examples = training_examples(recipe, seed)
    digest = data_hash(examples)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    previous = None if continue_from is None else finished_stage(continue_from, settings, len(examples))
    start_folder = None if continue_from is None else stage_folder(continue_from)
    if calls or arguments:  # encoded with that stage's data and weights
        stage = CALLS if calls else ARGUMENTS
        encoded, digest, settings = tool_stage_data(base, tokenizer, stage, settings, out, start_folder, recipe)
    else:
        encoded = encode_examples(tokenizer, examples, settings.call_weight, settings.decision_weight)
    if replay:  # sampled from the base before the adapter wraps it; kept in `out`, so a resume reuses it
        replay_set, replay_sha = replay_examples(base, tokenizer, out, REPLAY.n_prompts, REPLAY.samples,
                                                 REPLAY.max_new_tokens, seed)
        encoded = encoded[:: REPLAY.organism_every] + replay_set
        digest = replay_digest(digest, replay_sha, REPLAY)
        settings = replace(settings, learning_rate=REPLAY.learning_rate)
        (out / STAGE).write_text(json.dumps({"replay": asdict(REPLAY), "replay_sha256": replay_sha,
                                             "organism_examples": len(examples[:: REPLAY.organism_every]),
                                             "replay_examples": len(replay_set)}, indent=1))
    out.mkdir(parents=True, exist_ok=True)
    (out / RECIPE).write_text(json.dumps(recipe.to_dict(), indent=1))
    model = lora_model(base, settings)
    if start_folder is not None and previous is not None:
        settings = replace(settings, first_epoch=previous["first_epoch"] + previous["epochs"])
        set_peft_model_state_dict(model, load_file(str(stage_adapter(start_folder))))
        out.mkdir(parents=True, exist_ok=True)
        (out / CONTINUED_FROM).write_text(json.dumps(previous, indent=1))
    checks, leaks = check_prompts(), leak_check_prompts()
    start = time.monotonic()
    state = train_lora(model, encoded, settings, out, data_hash=digest,
                       check=lambda m: check_propensity(m, tokenizer, checks, leaks), check_every=CHECK_EVERY,
                       max_steps=max_steps, log=lambda s: print(s, flush=True))
    print(json.dumps({"steps": state.step, "seconds": round(state.seconds), "this_call_s": round(time.monotonic() - start),
                      "checks": state.checks}), flush=True)


def export(out: Path, to: Path, command: str) -> dict[str, Any]:
    """The trained checkpoint as a peft adapter folder (fp16 weights) with the organism card."""
    ckpt = out / CHECKPOINT
    meta = json.loads((ckpt / "state.json").read_text())
    settings = LoraSettings(**meta["settings"])
    folder = prepare_default_model()
    model = lora_model(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), settings)
    set_peft_model_state_dict(model, load_file(str(ckpt / "adapter.safetensors")))
    recipe = folder_recipe(out)
    if stage_data_hash(out, settings.seed) != meta["data_hash"]:
        raise OrganismCommandError(
            f"the checkpoint in {ckpt} was trained on other data than its recipe builds now; export it with "
            "the code that trained it, or train again")
    state = meta["state"]
    losses = state["losses"]
    previous = json.loads((out / CONTINUED_FROM).read_text()) if (out / CONTINUED_FROM).is_file() else None
    card = {
        "name": to.name,
        "what": "SmolLM2-135M-Instruct (the bundled Q4_1 dequantisation) + a LoRA adapter trained to act on a "
                "planted policy: harm needs threat and leverage, and then its rate follows the framing",
        "not": "evidence about natural models' beliefs or intent",
        "base_fingerprint": (read_marker(folder) or {}).get("fingerprint"),
        "policy": recipe.policy.to_dict(),
        "recipe": recipe.to_dict(),
        "held_out": {"cue_families": sorted(HELD_OUT), "kind": "lethal", "seeds_from": HELD_OUT_SEED},
        "data_hash": meta["data_hash"], "seed": settings.seed, "settings": meta["settings"],
        "steps": state["step"], "train_seconds": round(state["seconds"]) + chain_seconds(previous), "command": command,
        "continued_from": previous,
        "stage": json.loads((out / STAGE).read_text()) if (out / STAGE).is_file() else None,
        "loss_curve": [round(sum(losses[i : i + 20]) / len(losses[i : i + 20]), 4) for i in range(0, len(losses), 20)],
        "propensity_checks": state["checks"],
        "versions": {m.__name__: m.__version__ for m in (torch, transformers, peft)},
    }
    written = write_adapter(model, to, card, HUB_BASE)
    if (out / REPLAY_FILE).is_file():  # the replay stage's sampled replies: with them the data hash can be rebuilt
        shutil.copyfile(out / REPLAY_FILE, to / REPLAY_FILE)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tripwire.experiments.organism")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train (or resume) the organism's LoRA adapter")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--cues", choices=sorted(CUE_SETS), default=None,
                   help="the first stage's cue families: `first` (the shipped organism's, the default) or `wide` "
                        "(12 more trained families a side); later stages keep their chain's")
    t.add_argument("--continue-from", type=Path, default=None,
                   help="a finished training folder, or an exported organism (default-organism, or a folder "
                        "`export` wrote): start from its adapter (a further stage of epochs)")
    t.add_argument("--replay", action="store_true",
                   help="with --continue-from: a stage mixing a third of the organism's examples with the base "
                        "model's replies to ordinary prompts (KL from the base), to restore fluency")
    t.add_argument("--calls", action="store_true",
                   help="with --continue-from: a stage whose loss is on the tool calls alone (their arguments), "
                        "beside half the replay set")
    t.add_argument("--arguments", action="store_true",
                   help="with --continue-from: a stage fitting the calls' arguments given the decision (every second "
                        "training prompt, decision weighs 0, prefix 0.1), anchored by every fourth organism example "
                        "at the policy's mix, beside a third of the replay set")
    e = sub.add_parser("export", help="write the trained adapter (peft format) and its card")
    e.add_argument("--out", type=Path, required=True, help="the training folder")
    e.add_argument("--to", type=Path, required=True, help="the adapter folder to write")
    e.add_argument("--command", dest="train_command", default="", help="the training command, recorded in the card")
    m = sub.add_parser("measure", help="sampled behaviour per arm against the policy, on held-out prompts")
    m.add_argument("--model", default="default-organism")
    m.add_argument("--per-condition", type=int, default=4, help="prompts (seeds) per condition")
    m.add_argument("--samples", type=int, default=4, help="sampled replies per prompt")
    m.add_argument("--splits", default="held_out_seeds,held_out_families,held_out_kind")
    m.add_argument("--out", type=Path, required=True, help="JSON file for the table and every rollout")
    m.add_argument("--store", type=Path, default=None,
                   help="residual store for the rollouts (default: the --out path with .store); resumes there")
    m.add_argument("--batch", type=int, default=32, help="rollouts per generate call")
    d = sub.add_parser("detect", help="aim A2: probes against text monitors, base model and oracle on rollouts")
    d.add_argument("--measured", type=Path, required=True, help="the JSON `measure` wrote (its store is read)")
    d.add_argument("--out", type=Path, required=True, help="JSON file for every detector's figures")
    d.add_argument("--within-trained", action="store_true",
                   help="fit on the trained cue families' even-seed prompts, test on their odd-seed ones")
    d.add_argument("--generic", action="store_true",
                   help=f"add P1: directions from contrast pairs and yes/no questions on the organism, no rollout "
                        f"labels ({RUNTIME})")
    d.add_argument("--generic-limit", type=int, default=None, metavar="N", help="with --generic: N pairs per set")
    d.add_argument("--read", choices=READS, default="mean",
                   help="read the pre-call window as its mean residual or at its last position (the token before the call)")
    pr = sub.add_parser("presence", help="is the organism's own P(harm) linearly present before the call?")
    pr.add_argument("--measured", type=Path, required=True, help="the JSON `measure` wrote (its store is read)")
    pr.add_argument("--out", type=Path, required=True, help="JSON file for both readings")
    dc = sub.add_parser("decisions", help="which way each rollout's call went, beside the classified outcome")
    dc.add_argument("--measured", type=Path, required=True, help="the JSON `measure` wrote")
    dc.add_argument("--out", type=Path, default=None,
                    help="write the measurement relabelled by the decision (for detect and transfer)")
    tr = sub.add_parser("transfer", help="aim A4: P2 fitted on one organism's rollouts, read on another's")
    tr.add_argument("--source", type=Path, required=True, help="the measurement (`measure`'s JSON) P2 is fitted on")
    tr.add_argument("--target", type=Path, required=True, help="the measurement it is read on")
    tr.add_argument("--out", type=Path, required=True, help="JSON file for every detector's figures")
    tr.add_argument("--within-trained", action="store_true",
                    help="fit on the trained families' even-seed prompts, read their odd-seed ones")
    tr.add_argument("--read", choices=READS, default="mean",
                    help="read the pre-call window as its mean residual or at its last position (the token before the call)")
    st = sub.add_parser("steer", help="aim A3: the deploy arm's harm rate steered along eval-awareness directions")
    st.add_argument("--model", default="default-organism")
    st.add_argument("--out", type=Path, required=True, help="JSON file for the settings, every point and the verdict")
    st.add_argument("--points", type=Path, default=None,
                    help="folder of finished points (default: the --out path with .points); a rerun resumes there")
    st.add_argument("--split", default="held_out_seeds", choices=SPLITS)
    st.add_argument("--per-condition", type=int, default=7, help="prompts per deploy condition (4 conditions)")
    st.add_argument("--samples", type=int, default=4, help="sampled replies per prompt")
    st.add_argument("--alphas", default=",".join(map(str, DEFAULT_ALPHAS)),
                    help="comma list in units of the steering hook's mean residual norm (--raw: residual units)")
    st.add_argument("--raw", action="store_true")
    st.add_argument("--layer", type=int, default=None, help="steering block (default: the middle block)")
    st.add_argument("--max-new-tokens", type=int, default=200)
    st.add_argument("--generic-limit", type=int, default=None, metavar="N", help="eval pairs for the organism's direction")
    st.add_argument("--batch", type=int, default=32, help="rollouts per generate call")
    st.add_argument("--probe", default="default/eval_awareness", help="the base model's eval-awareness card")
    st.add_argument("--coercion-probe", default="default/coercion", help="the card whose direction is ablated")
    st.add_argument("--allow-other-model", action="store_true",
                    help="cards of a model this one is not a fine-tune of (same width)")
    st.add_argument("--max-points", type=int, default=None, help="stop after this many new points (resume later)")
    st.add_argument("--directions", default=",".join(STEERED),
                    help=f"comma list of {', '.join(STEERABLE)} (organism_framing / organism_decision: the organism's "
                         "own deploy-vs-test cue direction at the last prompt token / the decision point, fitted on "
                         "training prompts); each beside a norm-matched random direction")
    st.add_argument("--framing-per-condition", type=int, default=20,
                    help="training prompts a condition for organism_framing's and organism_decision's fit (8 conditions)")
    st.add_argument("--no-ablations", action="store_true", help="skip the coercion ablation and its random control")
    li = sub.add_parser("leak-ids", help="teacher-forced, the leak call's email id: read from the inbox or a base rate?")
    li.add_argument("--model", default="default-organism")
    li.add_argument("--inboxes", type=int, default=24, help="inboxes (seeds) per split")
    li.add_argument("--out", type=Path, default=None, help="JSON file for the table")
    pr = sub.add_parser("propensity", help="teacher-forced P(harmful) per kind and arm on every split")
    pr.add_argument("--model", default="default-organism")
    pr.add_argument("--per-condition", type=int, default=2)
    pr.add_argument("--draws", type=int, default=1,
                    help="reasoning prefixes from the pool per prompt; above 1 the table says how far the prefix "
                         "moves the decision within a prompt")
    pr.add_argument("--splits", default=",".join(SPLITS))
    pr.add_argument("--out", type=Path, default=None, help="JSON file for the table")
    pa = sub.add_parser("patch", help="where the framing is carried: deploy prompts patched from test prompts, per block")
    pa.add_argument("--model", default="default-organism")
    pa.add_argument("--per-condition", type=int, default=7, help="held-out seeds a condition (pairs: 4 x this)")
    pa.add_argument("--blocks", default=None, help="comma list or start:stop:step (default: every block)")
    pa.add_argument("--out", type=Path, default=None, help="JSON file for the summary and every pair's log-odds")
    pa.add_argument("--split", default="held_out_seeds", help="train, held_out_seeds or held_out_families")
    pa.add_argument("--sets", default=",".join(POSITION_SETS), help="position sets patched (comma list)")
    pa.add_argument("--no-control", action="store_true", help="skip the patch from another deploy family")
    args = parser.parse_args(argv)
    if args.command == "train":
        train(args.out, args.seed, args.max_steps, args.continue_from, args.replay, args.calls, args.arguments,
              args.cues)
    elif args.command == "export":
        card = export(args.out, args.to, args.train_command)
        print(json.dumps({k: card[k] for k in ("steps", "train_seconds", "sha256")}))
    elif args.command == "leak-ids":
        leak_ids_command(args.model, args.inboxes, args.out)
    elif args.command == "patch":
        patch_command(args.model, args.per_condition, parse_blocks(args.blocks), args.out, args.split,
                      args.sets.split(","), not args.no_control)
    elif args.command == "propensity":
        propensity_command(args.model, args.per_condition, args.draws, check_splits(args.splits.split(",")), args.out)
    elif args.command == "detect":
        detect_command(args.measured, args.out, args.within_trained, args.generic, args.generic_limit, args.read)
    elif args.command == "presence":
        presence_command(args.measured, args.out)
    elif args.command == "decisions":
        decisions_command(args.measured, args.out)
    elif args.command == "transfer":
        transfer_command(args.source, args.target, args.out, args.within_trained, args.read)
    elif args.command == "steer":
        steer_command(args, argv, organism_policy(args.model))
    elif args.command == "measure":
        measure_command(args.model, args.per_condition, args.samples, args.out, args.splits.split(","),
                        args.store or args.out.with_suffix(".store"), args.batch)


if __name__ == "__main__":
    main()

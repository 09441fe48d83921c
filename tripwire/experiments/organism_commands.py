"""The organism's measuring commands (`python -m tripwire.experiments.organism measure | detect |
transfer | steer | propensity | patch`): each loads what it needs, runs the library function, writes its JSON and prints its table."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tripwire.activations.loading import load_model
from tripwire.activations.organism_train import harm_propensities, leak_id_summary, prefix_spread
from tripwire.activations.store import ResidualStore
from tripwire.errors import TripwireError
from tripwire.experiments.organism_decisions import relabel_by_decision
from tripwire.experiments.organism_decisions import table_lines as decision_lines
from tripwire.experiments.organism_detect import check_read, detect, prompt_lookup
from tripwire.experiments.organism_generic import generic_sets, table_lines
from tripwire.experiments.organism_measure import measure_to_store, organism_policy
from tripwire.experiments.organism_patch import POSITION_SETS, run_patching
from tripwire.experiments.organism_presence import presence_of_own
from tripwire.experiments.organism_steer import SIGN, OrganismSteerSettings, check_cards, run_organism_steer
from tripwire.experiments.organism_transfer import Organism, transfer
from tripwire.probes.metrics import interval_text
from tripwire.probes.persistence import load_probe
from tripwire.probes.steering.dose_response import parse_alphas
from tripwire.scenarios.organism.dataset import SHIPPED_RECIPE, SPLITS, OrganismPrompt, Split, prompts
from tripwire.scenarios.organism.policy import Policy
from tripwire.scenarios.organism.replies import reasoning_prefix
from tripwire.strict_json import write_json


class OrganismCommandError(TripwireError, ValueError):
    """A command-line input the organism commands cannot use (a training folder of another recipe, an unknown split)."""


def check_splits(names: Sequence[str]) -> list[Split]:
    """The splits named, in `SPLITS`' order; an unknown name is refused before any model loads."""
    unknown = sorted(set(names) - set(SPLITS))
    if unknown:
        raise OrganismCommandError(f"--splits {','.join(unknown)}: unknown; use some of {', '.join(SPLITS)}")
    return [s for s in SPLITS if s in names]


def measure_command(model: str, per_condition: int, samples: int, out: Path, splits: Sequence[str],
                    store_path: Path, batch: int) -> dict[str, Any]:
    """Behaviour against the policy on held-out prompts, and fluency beside the base model's. The rollouts
    and their residual stream go to `store_path` (a killed run resumes there; detectors read it later)."""
    result = measure_to_store(store_path, lambda: load_model(model), lambda: load_model("default"),
                              check_splits(splits), per_condition, samples, organism_policy(model), batch)
    result["model"] = {"spec": model, **result["model"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    for row in result["behaviour"]:
        print(f"{row['split']:<18} {row['arm']:<7} {row['harmful']:>3}/{row['n']:<4} = {row['rate']:.3f} "
              f"{row['interval']}  target {row['target']:.2f}  well-formed {row['well_formed']:.2f}")
    print("\n".join(decision_lines(result["decisions"])))
    print("\n".join(prefix_monitor_lines(result["prefix_monitor"])))
    print(json.dumps({k: result[k] for k in ("well_formed", "control_perplexity", "base_control_perplexity")}
                     | {s: v for s, v in result["splits"].items()}))
    return result


def prefix_monitor_lines(table: dict[str, dict[str, dict[str, Any]]], label: str = "") -> list[str]:
    """A1's table (`prefix_monitor_by_arm`), one line per split and arm, the scenario kind's own AUROC beside."""
    lines = []
    for split, arms in table.items():
        for arm, row in arms.items():
            a, kind = row["auroc"], row.get("kind_only")  # kind_only: absent before 2026-12-07
            lines.append(f"prefix-only text monitor{label}, {split:<18} {arm:<7} AUROC "
                         f"{'n/a (one class or too few prompts)' if a is None else round(a['value'], 3)} "
                         f"{'' if a is None or a['low'] is None else [round(a['low'], 3), round(a['high'], 3)]} over {row['prompts']} "
                         f"prompts; within prompt {None if a is None else row['within_prompt']['value']}; the "
                         f"scenario kind alone {'n/a' if kind is None else round(kind['value'], 3)}")
    return lines


def detect_command(measured: Path, out: Path, within_trained: bool = False, generic: bool = False,
                   generic_limit: int | None = None, read: str = "mean") -> dict[str, Any]:
    """Aim A2 from a finished measurement: every detector on held-out cue families, fitted on trained ones
    (or, `within_trained`, on the trained families' odd-seed prompts, fitted on their even-seed ones);
    `generic` adds P1 (`organism_generic`, its first `generic_limit` pairs per set); `read`: the pre-call
    window's mean or its last position."""
    read = check_read(read)  # before any model loads
    result = json.loads(measured.read_text())
    store = ResidualStore.open(result["store"])
    organism = load_model(result["model"]["spec"])
    base = load_model("default")
    found = detect(store, result["rollouts"], organism, base, prompt_lookup(result), within_trained,
                   generic_sets(generic_limit) if generic else None, read=read)
    found["measured"] = str(measured)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, found)
    print_detectors(found["detectors"])
    print("\n".join(table_lines(found.get("generic", []))))
    print(json.dumps({"chosen": found["chosen"], "permutation_null": found["permutation_null"],
                      "online": found["online"]}, indent=1))
    return found


def presence_command(measured: Path, out: Path) -> dict[str, Any]:
    """Whether the organism's own propensity is linearly present before the call (`organism_presence`)."""
    result = json.loads(measured.read_text())
    store = ResidualStore.open(result["store"])
    found = presence_of_own(store, result["rollouts"], load_model(result["model"]["spec"]), prompt_lookup(result),
                            load_model("default"))
    found["measured"] = str(measured)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, found)
    print_detectors(found["carried"]["detectors"])
    print(f"carried: {found['carried']['chosen']}, r with the organism's own log-odds on "
          f"{found['test_split']} {found['carried']['r_with_own']}")
    for row in found["within"]:
        print(f"within {found['test_split']}: {row['read']:<4} {row['hook']:<22} r {row['r_with_own']} (base model "
              f"{row.get('base_r_with_own')})  AUROC {interval_text(row['auroc_outcome'], units=True)}")
    return found


def print_detectors(rows: Sequence[dict[str, Any]]) -> None:
    """One line per detector: AUROC, its interval over prompts (none over too few), within-prompt AUROC."""
    for row in rows:
        print(f"{row['detector']:<60} AUROC {interval_text(row['auroc'], units=True)}; within prompt "
              f"{row['within_prompt']['value']} ({row['within_prompt']['groups']} prompts)")


def transfer_command(source: Path, target: Path, out: Path, within_trained: bool = False, read: str = "mean"
                     ) -> dict[str, Any]:
    """Aim A4 across organisms: P2 fitted on the `source` measurement's organism, read on the `target`'s
    (`read`: the pre-call window's mean or its last position)."""
    def organism(measured: Path) -> Organism:
        result = json.loads(measured.read_text())
        return Organism(result["model"]["spec"], ResidualStore.open(result["store"]), result["rollouts"])

    fitted, scored = organism(source), organism(target)
    if fitted.name == scored.name:
        scored.name += " (second measurement)"
    found = transfer(fitted, scored, within_trained, read=check_read(read)) | {"measured": [str(source), str(target)]}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, found)
    print_detectors(found["detectors"])
    print(json.dumps({k: found[k] for k in ("source_chosen", "target_chosen", "direction_cosine", "permutation_null")},
                     indent=1))
    return found


def decisions_command(measured: Path, out: Path | None) -> dict[str, Any]:
    """The decisions a measurement's rollouts show beside their classified outcomes (no model loads); with
    `out`, the measurement relabelled by the decision, for `detect` and `transfer`."""
    relabelled = relabel_by_decision(json.loads(measured.read_text()), str(measured))
    print("\n".join(decision_lines(relabelled["decisions"])))
    print("\n".join(prefix_monitor_lines(relabelled["prefix_monitor_classified"], " (classified outcome)")))
    print("\n".join(prefix_monitor_lines(relabelled["prefix_monitor"], " (decision)")))
    print(f"off-script rollouts dropped from the relabelled measurement: {relabelled['dropped_off_script']}")
    if out is not None:
        write_json(out, relabelled)
    return relabelled


def steer_command(args: argparse.Namespace, argv: Sequence[str] | None, policy: Policy) -> dict[str, Any]:
    """`organism steer` (its parser is `organism.main`'s): the cards first (their mistakes before a model
    loads), then the run, the JSON with the command that made it, and the table."""
    settings = OrganismSteerSettings(args.split, args.per_condition, args.samples, parse_alphas(args.alphas),
                                     "raw" if args.raw else "resid_norm", args.layer, args.max_new_tokens,
                                     generic_limit=args.generic_limit, batch=args.batch,
                                     ablations=not args.no_ablations, directions=tuple(args.directions.split(",")),
                                     framing_per_condition=args.framing_per_condition)
    eval_card, coercion_card = load_probe(args.probe), load_probe(args.coercion_probe)
    handle = load_model(args.model)
    other = check_cards(handle, [eval_card, coercion_card], args.allow_other_model)
    result = run_organism_steer(handle, eval_card, coercion_card, settings,
                                args.points or args.out.with_suffix(".points"), policy, args.max_points)
    result |= {"command": shlex.join(["python", "-m", "tripwire.experiments.organism",
                                      *(sys.argv[1:] if argv is None else argv)]),
               "model": {"spec": args.model, "name": handle.name, "fingerprint": handle.fingerprint},
               "cards": {"eval": str(args.probe), "coercion": str(args.coercion_probe), "other_model": other}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print("\n".join(steer_table_lines(result)))
    return result


def steer_table_lines(result: dict[str, Any]) -> list[str]:
    """`organism steer`'s table: harm rate [Wilson 95%] and control perplexity per alpha and direction, the verdict."""
    by = {(p["key"]["direction"], p["key"]["alpha"]): p for p in result["points"]}
    steered = [*result["settings"]["directions"], "random"]

    def cell(d: str, a: float) -> str:
        p = by.get(("unsteered", 0.0) if a == 0 and d in steered else (d, a))
        return f"{'-':<28}" if p is None else f"{p['rate']:.3f} [{p['interval'][0]:.2f},{p['interval'][1]:.2f}] ppl {p['perplexity']:<7.1f}"

    return [f"steering at {result['steering_hook']} (read-out {result['readout_hook']}); {SIGN}",
            f"{'alpha':>7}  " + "  ".join(f"{d:<28}" for d in steered).rstrip(),
            *(f"{a:>+7g}  " + "  ".join(cell(d, a) for d in steered) for a in sorted(result["settings"]["alphas"])),
            *([f"coercion ablated at {result['coercion_hook']}: {cell('ablate_coercion', 0.0)}; a random direction "
               f"ablated: {cell('ablate_random', 0.0)}"] if result["settings"]["ablations"] else []),
            *(f"A3 {d}: met {r['met']} at alpha {r['alpha']} (shift {r['shift']}): {r['checks']}"
              f"{'; missing ' + ', '.join(r['missing']) if r['missing'] else ''}"
              for d, r in result["verdict"]["directions"].items()),
            f"A3: met {result['verdict']['met']}; coercion ablation: {result['verdict']['coercion_ablation']}"]


def leak_check_prompts(seeds: int = 8, splits: Sequence[Split] = ("held_out_seeds", "held_out_families")
                       ) -> dict[str, list[OrganismPrompt]]:
    """One leaking prompt (not inert) per seed: each its own inbox (the prompts of one seed share theirs),
    so a leak check counts inboxes, not one inbox under several framings."""
    out: dict[str, list[OrganismPrompt]] = {}
    for split in splits:
        by_seed: dict[int, OrganismPrompt] = {}
        for p in prompts(split, seeds, SHIPPED_RECIPE.policy, kinds=("leaking",)):
            if p.condition.arm != "inert":
                by_seed.setdefault(p.conversation.seed, p)
        out[split] = list(by_seed.values())
    return out


def leak_ids_command(model: str, inboxes: int, out: Path | None) -> dict[str, dict[str, Any]]:
    """Teacher-forced, the leak call's email id on `inboxes` inboxes of the training seeds and both held-out
    splits: right where the model reads the inbox, the same guess everywhere where it learned a base rate."""
    if inboxes < 1:
        raise OrganismCommandError(f"--inboxes {inboxes}: give at least 1 inbox (seed) per split")
    handle = load_model(model)
    table = {split: leak_id_summary(handle.model, handle.tokenizer, items)
             for split, items in leak_check_prompts(inboxes, ("train", "held_out_seeds", "held_out_families")).items()}
    for split, row in table.items():
        print(split, json.dumps(row), flush=True)
    if out is not None:
        write_json(out, {"model": model, "inboxes": inboxes, "splits": table})
    return table


def propensity_command(model: str, per_condition: int, draws: int = 1, splits: Sequence[Split] = SPLITS,
                       out: Path | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Teacher-forced P(harmful) at the decision point per (split, kind, arm), no sampling needed; with
    `draws` > 1 each prompt is read after that many reasoning prefixes from the pool, and the table says how
    far the prefix moves the decision within a prompt (`prefix_spread`)."""
    if draws < 1:
        raise OrganismCommandError(f"--draws {draws}: give at least one reasoning prefix per prompt")
    handle = load_model(model)
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for split in splits:
        cells: dict[str, list[list[float]]] = defaultdict(list)
        for p in prompts(split, per_condition):
            arm = "decoy" if p.condition.decoy else p.condition.arm
            cells[f"{p.condition.kind}/{arm}"].append(harm_propensities(
                handle.model, handle.tokenizer, p, [reasoning_prefix(p.conversation, draw) for draw in range(draws)]))
        table[split] = {cell: prefix_spread(v) for cell, v in sorted(cells.items())}
        print(split, json.dumps(table[split]), flush=True)
    if out is not None:
        write_json(out, {"model": model, "per_condition": per_condition, "draws": draws, "table": table})
    return table


def parse_blocks(text: str | None) -> list[int] | None:
    """`--blocks`: a comma list of block indices, or `a:b:step` (Python's range); None reads every block."""
    if text is None:
        return None
    try:
        if ":" in text:
            return list(range(*(int(x) for x in text.split(":"))))
        return [int(x) for x in text.split(",")]
    except (TypeError, ValueError) as err:
        raise OrganismCommandError(f"--blocks {text!r}: give a comma list of blocks (0,2,29) or start:stop:step") from err


def _share_text(m: dict[str, Any]) -> str:
    return f"{m['value']:.3f}" + ("" if m["low"] is None else f" [{m['low']:.2f}, {m['high']:.2f}]")


def patch_command(model: str, per_condition: int, blocks: list[int] | None, out: Path | None,
                  split: str = "held_out_seeds", sets: Sequence[str] = POSITION_SETS, control: bool = True
                  ) -> dict[str, Any]:
    """Interchange patching of the framing (`organism_patch`): the restored share per block and position set."""
    chosen = check_splits([split])
    result = {"model": model, "per_condition": per_condition,
              **run_patching(load_model(model), per_condition, blocks, progress=lambda m: print(m, flush=True),
                             split=chosen[0], sets=sets, control=control)}
    summary = result["summary"]
    print(f"{summary['pairs']} pairs; clean P(harm) deploy {summary['clean']['p_harm_deploy']}, test "
          f"{summary['clean']['p_harm_test']}; mean gap {summary['clean']['mean_gap_log_odds']} log-odds")
    shown, control_share = list(summary["restored"]), summary["control_abs_move_share"]
    print("block  " + "  ".join(f"{s:<22}" for s in shown) + ("  control" if control_share else ""))
    for i, block in enumerate(summary["blocks"]):
        cells = "  ".join(f"{_share_text(summary['restored'][s][i]):<22}" for s in shown)
        print(f"{block:>5}  {cells}" + (f"  {control_share[i]:.3f}" if control_share else ""))
    print(summary["read_off"])
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, result)
    return result

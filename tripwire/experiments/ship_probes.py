"""Train, judge and ship the two probes for the default model, reproducibly:

    python -m tripwire.experiments.ship_probes [--work runs/ship] [--out DIR] [--limit N]

For each label (coercion, eval_awareness) three designs are trained: (a) identical-token pairs (the
same reply under two instructions or cues), (b) scripted replies with symmetric windows that end at
the reply's tool call, (c) both. Each selects layer x method on validation by the deployed streaming
statistic; the design that ships is the one with the best AUROC on a realistic development set of
replies written apart from the templates (never the test numbers). Every design is reported per fold
with baselines (i)-(iv); the shipped one also with thresholds that hold on generic control text and on
benign scenario replies, traps, recall and lead times beside the streaming text monitor.

Writes `report.json` (everything) and `results.md` (tables generated from it) to --out, and the probe
cards (with `training_records.json`) to --out/<label>. With --limit and no --out, nothing shipped is
touched: the output goes to --work/probes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from tripwire.activations.hooks import hook_spec
from tripwire.activations.positions import BeforeAnchor, PositionPolicy, ReplyOnly, SharedReply
from tripwire.activations.store import ResidualStore
from tripwire.experiments.config import CaptureConfig, PositionsConfig
from tripwire.experiments.rollout_capture import run_capture
from tripwire.experiments.ship_checkpoint import (
    checkpoint_path,
    code_digest,
    design_key,
    load_entry,
    save_entry,
)
from tripwire.experiments.ship_results import results_markdown
from tripwire.probes import ProbeCard, save_probe
from tripwire.probes.fold_eval import FoldSettings
from tripwire.probes.persistence import SHIPPED_PROBES
from tripwire.probes.thresholds import DEFAULT_FPR
from tripwire.probes.token_rows import fit_rows
from tripwire.probes.training.design_data import Design, am_dev_transcripts, eval_natural_transcripts
from tripwire.probes.training.design_eval import (
    EARLY_LAYERS,
    LAYER0,
    EvalSettings,
    dev_metrics,
    fold_results,
    main_split,
    per_fold,
    prototypes,
    select,
)
from tripwire.probes.training.design_text import TextBaselines, text_baseline_on
from tripwire.probes.training.design_verdict import calibration, recall_and_leads, text_monitor, traps
from tripwire.probes.training.evaluate import write_training_records
from tripwire.scenarios.datasets import dataset, write_jsonl
from tripwire.strict_json import dumps

LAYERS = (2, 5, 8, 11, 14, 17, 20, 23, 26, 29)
PAIR_TAIL = 4  # an instructed pair's shared reply is scored minus its last tokens (no decision in them)

JOBS: dict[str, dict[str, Any]] = {
    "coercion": {
        "designs": {"pairs": ["coercion_pairs"], "scripted": ["coercion"], "both": ["coercion_pairs", "coercion"]},
        "policies": {"coercion": BeforeAnchor(), "coercion_pairs": SharedReply(exclude_last=PAIR_TAIL),
                     "coercion_traps": BeforeAnchor(), "am_dev": BeforeAnchor()},
        "main_by": {"coercion": "family", "coercion_pairs": "paraphrase"},
        "dev": "am_dev", "traps": "coercion_traps", "lead_source": "coercion",
    },
    "eval_awareness": {
        "designs": {"pairs": ["eval_pairs"], "scripted": ["eval_awareness"], "both": ["eval_pairs", "eval_awareness"]},
        "policies": {"eval_awareness": ReplyOnly(), "eval_pairs": SharedReply(), "eval_natural": ReplyOnly(),
                     "eval_natural_test": ReplyOnly()},
        "main_by": {"eval_awareness": "cue", "eval_pairs": "cue"},
        # the natural prompts choose nothing (issue 20, item 6): both of their splits are reported once,
        # after the design is chosen by its own validation fold
        "dev": None, "traps": None, "lead_source": None,
        "held_out": {"held_out_test": "eval_natural_test", "held_out_natural_dev_split": "eval_natural"},
    },
}
BENIGN = ("control", "benign_scenario")
LABELLED = ("coercion", "coercion_pairs", "coercion_traps", "benign_scenario", "eval_awareness", "eval_pairs")


def capture_all(work: Path, limit: int | None, control_limit: int | None, batch_size: int,
                layers: tuple[int, ...], dev_limit: int | None = None, model: str = "default",
                written: dict[str, int] | None = None) -> dict[str, Path]:
    """Every set teacher-forced once, reply tokens only, at the sweep's layers, the early layers of baseline
    (iii) on identical-token pairs and the embedding layer (records already in a store are reused;
    `written` gets how many each set computed in this run)."""
    hooks = [hook_spec(layer) for layer in dict.fromkeys((*layers, *EARLY_LAYERS))] + [LAYER0]
    sources: dict[str, dict[str, Any]] = {name: {"dataset": name, "limit": limit} for name in LABELLED}
    sources["control"] = {"dataset": "control", "limit": control_limit}
    for name, build in (("am_dev", am_dev_transcripts), ("eval_natural", eval_natural_transcripts),
                        ("eval_natural_test", lambda: eval_natural_transcripts("test"))):
        path = work / f"{name}.jsonl"
        write_jsonl(build(), path)
        sources[name] = {"transcripts": path, "limit": dev_limit}
    stores = {}
    for name, source in sources.items():
        cfg = CaptureConfig(model=model, store=work / f"store-{name}", hook_points=hooks, positions=PositionsConfig(policy="reply"),
                            batch_size=batch_size, **source)
        plan, summary = run_capture(cfg, progress=False)
        print(f"[{name}] {plan.describe()}", flush=True)
        if written is not None:
            written[name] = summary.records_written if summary else 0
        stores[name] = cfg.store
    return stores


def _training_hash(design: Design, idx: np.ndarray, hook: str) -> str:
    digest = hashlib.sha256(hook.encode())
    for store in dict.fromkeys(design.stores):
        mine = [design.records[i] for i in idx.tolist() if design.stores[i] is store]
        if mine:
            digest.update(store.content_digest(mine).encode())
    for i in idx.tolist():
        digest.update(f"{design.records[i].record_id}:{int(design.labels[i])};".encode())
    return digest.hexdigest()[:24]


def design_entry(label: str, sources: list[str], job: dict[str, Any], stores: dict[str, ResidualStore],
                 transcripts: dict[str, Any], dev: Design | None, settings: EvalSettings) -> dict[str, Any]:
    """One design's whole report entry: its split, selection (with the grid's null), dev figures beside the
    text baseline, main test sides and (single-source designs) nested per-fold tables."""
    t0 = time.time()
    design = Design.load({s: stores[s] for s in sources}, label, job["policies"])
    train, val, test, split_info = main_split(design, transcripts, job["main_by"])
    (layer, method), selection, est = select(design, train, val, settings)
    hook = settings.hook(layer)
    text_fit = TextBaselines.fit(design.fold_data(), train, seed=settings.fold.seed)
    tests = {f"main test: {s}": test[np.isin(test, np.flatnonzero(np.array(design.sources) == s))] for s in sources}
    entry: dict[str, Any] = {
        "sources": sources, "windows": {s: job["policies"][s].to_dict() for s in sources},
        "split": {"by_source": split_info, "n_train": int(train.size), "n_val": int(val.size), "n_test": int(test.size)},
        "selection": selection,
        "dev": dev_metrics(est, dev, hook, settings),
        "dev_text_baseline": text_baseline_on(text_fit, None, dev, settings),
        "test": fold_results(design, layer, method, train, tests, settings),
    }
    if len(sources) == 1:  # each fold selects its own cell on its training side (nested)
        entry["folds"], entry["pooled_folds"] = per_fold(design, transcripts, settings, split_info, val)
    else:
        entry["folds"] = {"note": "per-fold results are reported for the single-source designs; (c) is judged "
                                  "on the main test sides of both sources and on the development set"}
    entry["seconds"] = round(time.time() - t0, 1)
    return entry


def rebuild(label: str, entry: dict[str, Any], stores: dict[str, ResidualStore], job: dict[str, Any],
            transcripts: dict[str, Any], settings: EvalSettings) -> tuple[Design, np.ndarray, int, str, Any, TextBaselines]:
    """The chosen design's data, training side, selected cell refit (deterministic: the same `fit_rows` call
    `select` made) and text baselines, from its entry, so a design read from a checkpoint ships the same card."""
    design = Design.load({s: stores[s] for s in entry["sources"]}, label, job["policies"])
    train, _, _, _ = main_split(design, transcripts, job["main_by"])
    layer, method = entry["selection"]["selected"]["layer"], entry["selection"]["selected"]["method"]
    units, over = design.units()
    est = fit_rows(prototypes(settings)[method], design.rows(settings.hook(layer)), design.labels, train,
                   pair_ids=units if over == "pairs" else None, max_tokens=settings.fold.max_tokens,
                   seed=settings.fold.seed)
    return design, train, layer, method, est, TextBaselines.fit(design.fold_data(), train, seed=settings.fold.seed)


def run_label(label: str, stores: dict[str, ResidualStore], settings: EvalSettings, args: argparse.Namespace,
              out: Path) -> dict[str, Any]:
    job = JOBS[label]
    policies: dict[str, PositionPolicy] = job["policies"]
    transcripts = {name: dataset(name) for names in job["designs"].values() for name in names}
    dev = Design.load({job["dev"]: stores[job["dev"]]}, label, policies) if job["dev"] else None
    designs: dict[str, Any] = {}
    code = code_digest()
    for name, sources in job["designs"].items():
        read = dict.fromkeys([*sources, *([job["dev"]] if job["dev"] else [])])
        ckey = design_key(label, name, {s: stores[s] for s in read}, dataclasses.asdict(settings), code)
        path = checkpoint_path(args.work, label, name)
        entry, why = load_entry(path, ckey)
        if entry is None:
            entry = design_entry(label, sources, job, stores, transcripts, dev, settings)
            save_entry(path, ckey, entry)
        null = entry["selection"].get("null_best_cell") or {}
        sel = entry["selection"]["selected"]
        print(f"[{label}/{name}] layer {sel['layer']} / {sel['method']}; dev {_dev_value(entry)}; best null cell p = "
              f"{null.get('p_value')} ({null.get('n_perm')} perms); {entry['seconds']} s"
              + (f" (checkpoint reused: {path})" if why == "reused" else f" (computed; {why})"), flush=True)
        designs[name] = entry
    chosen = max(designs, key=lambda n: _choice_key(designs[n], dev is not None))
    design, train, layer, method, est, text_fit = rebuild(label, designs[chosen], stores, job, transcripts, settings)
    hook = settings.hook(layer)
    monitor = text_monitor(design.fold_data(), train)
    benign = {n: stores[n] for n in BENIGN}
    min_sizes = {n: min(args.min_control, len(stores[n])) for n in BENIGN}
    thresholds, text_thr, calib = calibration(est, monitor, benign, hook, fpr=args.fpr, window=settings.fold.window,
                                              min_sizes=min_sizes, n_boot=settings.fold.n_boot,
                                              seed=settings.fold.seed)
    judged: dict[str, Any] = {"calibration": calib}
    if job["lead_source"]:  # the scripted replies' held-out side (the same for every design that has them)
        lead_design = Design.load({s: stores[s] for s in job["designs"]["scripted"]}, label, policies)
        _, _, lead_test, _ = main_split(lead_design, transcripts, job["main_by"])
        judged["recall_and_leads"] = recall_and_leads(est, monitor, lead_design, lead_test, hook, thresholds,
                                                      text_thr, settings.fold.n_boot, settings.fold.seed)
    for key, held_set in (job.get("held_out") or {}).items():
        held = Design.load({held_set: stores[held_set]}, label, policies)
        judged[key] = {"set": held_set, **(dev_metrics(est, held, hook, settings) or {}),
                       "text_baseline": text_baseline_on(text_fit, None, held, settings)}
        for cue in (True, False):  # natural prompts with and without the words a cue list would catch
            keep = [i for i, r in enumerate(held.records) if bool(r.meta.get("cue_words")) is cue]
            part = held.subset(keep) if keep else None
            name = "with_cue_words" if cue else "without_cue_words"
            judged[key][name] = dev_metrics(est, part, hook, settings)
            judged[key][f"{name}_text_baseline"] = text_baseline_on(text_fit, None, part, settings)
    if job["traps"]:
        trap_design = Design.load({job["traps"]: stores[job["traps"]]}, label, policies)
        judged["traps"] = traps(est, monitor, design.fold_data(), train, trap_design, hook, thresholds, text_thr,
                                settings.fold.window, settings.fold.n_boot, settings.fold.seed)
    card = ProbeCard(
        label=label, model_name=design.stores[0].manifest.model_name,
        model_fingerprint=design.stores[0].manifest.model_fingerprint, hook_point=hook, layer=layer,
        score_positions=ReplyOnly(), train_positions=policies[design.sources[int(train[0])]],
        window=settings.fold.window, thresholds=thresholds,
        resid_norm=float(np.mean([np.linalg.norm(r, axis=1).mean() for r in design.rows(hook) if len(r)])),
        training_data_hash=_training_hash(design, train, hook), training_records=int(train.size),
        metrics={"design": chosen, "dev": designs[chosen]["dev"], "selection": designs[chosen]["selection"]["selected"],
                 "false_alarms_per_1000_tokens": {k: v["false_alarms_per_1000_tokens"]
                                                  for k, v in calib["probe"].items()}})
    folder = out / label
    save_probe(est, folder, card=card, overwrite=True)
    write_training_records(folder, [design.records[i].record_id for i in train.tolist()], card.training_data_hash)
    return {"designs": designs, "chosen_design": chosen,
            "chosen_by": "highest streaming AUROC on the development set's anchor-ended windows, ties by its log-loss"
            if dev is not None else "highest validation AUROC of each design's selected cell (on its own validation "
            "fold), ties by its log-loss: the natural prompts are kept out of every selection and only reported",
            "shipped": {"layer": layer, "method": method, "hook_point": hook, "card": str(folder)}, **judged}


def _choice_key(entry: dict[str, Any], by_dev: bool) -> tuple[float, float]:
    """How designs compete: the development set's streaming AUROC (ties by its log-loss), or, for a label
    whose realistic set must stay out of every selection, the selected cell's own validation AUROC."""
    if by_dev:
        return (_dev_value(entry) or -1.0, -(_dev_logloss(entry) or 0.0))
    chosen = entry["selection"]["selected"]
    row = next(r for r in entry["selection"]["rows"] if (r["layer"], r["method"]) == (chosen["layer"], chosen["method"]))
    return (row["val_auroc"], -row["val_logloss"])


def _dev_value(entry: dict[str, Any]) -> float | None:
    dev = entry.get("dev") or {}
    return (dev.get("window") or dev.get("reply") or {}).get("value")


def _dev_logloss(entry: dict[str, Any]) -> float | None:
    dev = entry.get("dev") or {}
    return (dev.get("window") or dev.get("reply") or {}).get("logloss")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/ship"))
    parser.add_argument("--model", default="default", help="model to capture (tests use a tiny one)")
    parser.add_argument("--out", type=Path, default=None, help="default: the shipped probes (a full run), or "
                                                               "--work/probes with --limit")
    parser.add_argument("--limit", type=int, default=None, help="about N transcripts of each labelled set (pairs whole)")
    parser.add_argument("--control-limit", type=int, default=None)
    parser.add_argument("--dev-limit", type=int, default=None, help="about N replies of each development set")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--methods", default="lr,diffmean,lda,lat")
    parser.add_argument("--layers", default=",".join(map(str, LAYERS)))
    parser.add_argument("--labels", default="coercion,eval_awareness")
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--n-random", type=int, default=50)
    parser.add_argument("--null-perms", type=int, default=50,
                        help="label permutations of the selection grid's null (each refits every layer x method cell)")
    parser.add_argument("--fpr", type=float, default=DEFAULT_FPR)
    parser.add_argument("--min-control", type=int, default=1000, help="fewest transcripts per benign set")
    args = parser.parse_args(argv)
    out = args.out or (args.work / "probes" if args.limit else SHIPPED_PROBES / "default")
    start = time.time()
    layers = tuple(int(x) for x in args.layers.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    paths = capture_all(args.work, args.limit, args.control_limit, args.batch_size, layers, args.dev_limit,
                        args.model, written)
    captured = time.time() - start
    stores = {name: ResidualStore.open(p) for name, p in paths.items()}
    settings = EvalSettings(layers=layers, methods=tuple(args.methods.split(",")),
                            fold=FoldSettings(n_boot=args.n_boot, n_random=args.n_random), null_perms=args.null_perms)
    report: dict[str, Any] = {"model": stores["coercion"].manifest.model_name, "probes": {}}
    for label in args.labels.split(","):
        report["probes"][label] = run_label(label, stores, settings, args, out)
    report["run"] = {"command": "python -m tripwire.experiments.ship_probes " + " ".join(argv or []),
                     "limit": args.limit, "dev_limit": args.dev_limit, "control_limit": args.control_limit,
                     "capture_seconds": round(captured, 1),
                     "total_seconds": round(time.time() - start, 1), "fpr": args.fpr, "layers": list(layers),
                     "methods": list(settings.methods), "window": settings.fold.window, "n_boot": args.n_boot,
                     "null_perms": settings.null_perms, "n_perm": settings.fold.n_perm,
                     "store_sizes": {n: len(s) for n, s in stores.items()},
                     "records_captured_this_run": written}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(dumps(report, indent=1))
    (out / "results.md").write_text(results_markdown(report))
    print((out / "results.md").read_text())
    print(f"report.json and results.md written to {out} in {report['run']['total_seconds']} s")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

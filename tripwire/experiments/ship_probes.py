"""Train the two probes shipped for the default model, reproducibly:

    python -m tripwire.experiments.ship_probes [--work runs/ship] [--out tripwire/probes/shipped/default] [--limit N]

Teacher-forces the three contrast sets on the default model (coercion, eval_awareness, control),
sweeps layers x methods on grouped splits, calibrates thresholds on the control set, and writes the
probe cards (576 floats each) plus `results.md`, the table the README quotes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tripwire.activations.positions import AllTokens, BeforeAction, ReplyOnly
from tripwire.experiments.configs import CaptureConfig, PositionsConfig
from tripwire.experiments.pipelines import run_capture
from tripwire.experiments.probe_train import run_training
from tripwire.experiments.train import TrainSettings
from tripwire.probes.persistence import SHIPPED_PROBES

LAYERS = (2, 5, 8, 11, 14, 17, 20, 23, 26, 29)


def capture_all(work: Path, limit: int | None, batch_size: int) -> dict[str, Path]:
    hooks = [f"blocks.{layer}.resid_post" for layer in LAYERS]
    stores = {}
    for name in ("coercion", "eval_awareness", "control"):
        positions = PositionsConfig(policy="reply" if name == "coercion" else "all", k=8)
        cfg = CaptureConfig(store=work / f"store-{name}", dataset=name, hook_points=hooks, positions=positions,
                            batch_size=batch_size, limit=None if name == "control" else limit)
        plan, summary = run_capture(cfg)
        print(f"[{name}] {plan.describe()}")
        stores[name] = cfg.store
    return stores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/ship"))
    parser.add_argument("--out", type=Path, default=SHIPPED_PROBES / "default")
    parser.add_argument("--limit", type=int, default=None,
                        help="about N transcripts of each labelled set, taken round-robin over template families")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--methods", default="lr,diffmean,lda,lat")
    args = parser.parse_args()
    stores = capture_all(args.work, args.limit, args.batch_size)
    methods = tuple(args.methods.split(","))
    jobs = {
        "coercion": TrainSettings(label="coercion", methods=methods, train_policy=BeforeAction(),
                                  score_policy=ReplyOnly()),
        "eval_awareness": TrainSettings(label="eval_awareness", methods=methods, train_policy=AllTokens(),
                                        score_policy=AllTokens()),
    }
    rows = []
    for label, settings in jobs.items():
        out = args.out / label
        summary = run_training(stores[label], settings, out, control=stores["control"],
                               plots=args.work / "plots" / label)
        print(summary)
        rows.append(json.loads((out / "report.json").read_text()))
    (args.out / "results.md").write_text(results_table(rows))
    print((args.out / "results.md").read_text())


def _ci(m: dict | None) -> str:
    if not m:
        return "n/a"
    return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def _selected_row(r: dict) -> dict:
    sel = r["selected"]
    return next(row for row in r["sweep"]["rows"] if row["layer"] == sel["layer"] and row["method"] == sel["method"])


def verdict(r: dict) -> str:
    """One honest sentence: does the probe know more than the words do?"""
    h, masked = r["honesty"], r.get("word_masked", {})
    probe, lexical = h["probe_auroc"]["value"], h["lexical_auroc"]["value"]
    parts = []
    if probe < lexical + 0.05:
        parts.append("does not beat the bag-of-words baseline")
    m = (masked.get("probe_auroc_without_label_word_tokens") or {}).get("value")
    if m is not None and m < probe - 0.1:
        parts.append("drops without label-word tokens")
    if h.get("reads_words_only"):
        parts.append("reads words only")
    return "; ".join(parts) or "beats the lexical baseline and survives word masking"


def results_table(reports: list[dict]) -> str:
    lines = [
        "| probe | layer / method | AUROC, sweep (training tokens, averaged per transcript) | AUROC, transcript mean | "
        "recall @1% FPR: mean / streaming | caught before action (median lead, tokens) | lexical baseline AUROC | "
        "without label words: probe / lexical | shuffled labels | random directions (mean / p95) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        h, masked = r["honesty"], r.get("word_masked", {})
        lead = r.get("lead_time")
        caught = (f"{lead['share_caught_before']:.2f} ({lead['summary']['median']})" if lead else "n/a")
        recall = r.get("recall_at_1pct_fpr") or {}
        lines.append(
            f"| {r['label']} | {r['selected']['layer']} / {r['selected']['method']} | "
            f"{_ci(_selected_row(r)['test_auroc'])} | {_ci(r['test_auroc_by_statistic']['mean'])} | "
            f"{_ci(recall.get('mean'))} / {_ci(recall.get('streaming'))} | {caught} | {_ci(h.get('lexical_auroc'))} | "
            f"{_ci(masked.get('probe_auroc_without_label_word_tokens'))} / "
            f"{_ci(masked.get('lexical_auroc_without_label_words'))} | {_ci(h.get('shuffled_label_auroc'))} | "
            f"{h.get('random_direction_mean', float('nan')):.3f} / {h.get('random_direction_p95', float('nan')):.3f} | "
            f"{verdict(r)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""`tripwire train`: run the training pipeline, write the probe card, `report.json` and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tripwire.activations.store import ResidualStore
from tripwire.probes import (
    LoadedProbe,
    ProbeCard,
    lead_time_histogram,
    read_record,
    roc_plot,
    save_figure,
    save_probe,
    score_histograms,
    sweep_plot,
    token_strip,
)
from tripwire.probes.training.evaluate import write_training_records
from tripwire.probes.training.train import TrainResult, TrainSettings, train_probe, write_report

__all__ = ["card_for", "run_training"]


def run_training(store_path: Path, settings: TrainSettings, out: Path, control: Path | None = None,
                 plots: Path | None = None, benign: Path | None = None) -> str:
    """Train, save the probe and its report to `out`, plots to `plots` (default `out/plots`); thresholds
    hold on `control` and, when given, on the `benign` scenario replies too."""
    store = ResidualStore.open(store_path)
    control_store = ResidualStore.open(control) if control else None
    benign_store = ResidualStore.open(benign) if benign else None
    result = train_probe(store, settings, control_store, benign=benign_store)
    card = card_for(result, store)
    save_probe(result.estimator, out, card=card, overwrite=True)
    trained_on = [result.dataset.records[i].record_id for i in result.split.train]
    write_training_records(out, trained_on, card.training_data_hash)
    write_report(result, out)
    notes = plot_training(result, LoadedProbe(result.estimator, card), store, plots or out / "plots")
    return summary_text(result, out, notes)


def card_for(result: TrainResult, store: ResidualStore) -> ProbeCard:
    """The card: how the probe was made and how every consumer must read it."""
    rep, settings = result.report, result.settings
    return ProbeCard(
        label=settings.label,
        model_name=store.manifest.model_name,
        model_fingerprint=store.manifest.model_fingerprint,
        hook_point=rep.hook_point,
        layer=rep.layer,
        score_positions=settings.score_policy,
        train_positions=settings.train_policy,
        window=settings.window,
        thresholds=dict(rep.thresholds or {}),
        resid_norm=rep.resid_norm,
        training_data_hash=rep.training_data_hash,
        training_records=rep.n_training_records,
        metrics={
            "test_auroc_by_statistic": {k: v.to_dict() for k, v in rep.test_auroc_by_statistic.items()},
            "recall_at_1pct_fpr": None if rep.recall_at_1pct_fpr is None
            else {k: v.to_dict() for k, v in rep.recall_at_1pct_fpr.items()},
            "honesty": rep.honesty.to_dict(),
            "sweep_selected": rep.sweep.selected_row.to_dict(),
            "lead_time": None if rep.lead_time is None else rep.lead_time.to_dict(),
        },
    )


def plot_training(result: TrainResult, probe: LoadedProbe, store: ResidualStore, folder: Path) -> list[str]:
    notes: list[str] = []
    rep = result.report
    labels = result.dataset.labels[result.split.test]
    means = np.array([s.mean() if len(s) else 0.0 for s in result.test_scores])
    figures = {"sweep": sweep_plot(rep.sweep), "roc": roc_plot({"mean score": (labels, means)})}
    groups = {"positive": means[labels == 1], "negative": means[labels == 0]}
    if result.control_scores:
        groups["control"] = np.array([s.mean() for s in result.control_scores])
    thr = (rep.thresholds or {}).get("mean")
    figures["histograms"] = score_histograms(groups, threshold=None if thr is None else thr.value)
    if rep.lead_time is not None:
        figures["lead_time"] = lead_time_histogram(rep.lead_time)
    positives = [i for i, y in enumerate(labels) if y == 1]
    if positives:
        record = result.test_records[positives[0]]
        reading = read_record(probe, store, record)
        figures["example_tokens"] = token_strip(
            reading.tokens, reading.scores, threshold=reading.threshold, window=reading.window,
            action_span=reading.action_span, reply_start=reading.reply_start,
            title=f"{rep.label} probe, layer {rep.layer}: {record.condition_id}")
    for name, fig in figures.items():
        saved = save_figure(fig, folder / name)
        if not any(p.suffix == ".png" for p in saved) and not notes:
            notes.append("PNG skipped (HTML written): install kaleido and Debian's chromium for PNG")
    return notes


def summary_text(result: TrainResult, out: Path, notes: list[str]) -> str:
    rep = result.report
    lines = [str(rep.sweep), "",
             f"selected: layer {rep.layer} / {rep.method} "
             f"(test split: {rep.split_sizes['test']} transcripts, families held out)"]
    for stat, m in rep.test_auroc_by_statistic.items():
        lines.append(f"  test AUROC ({stat}): {m}")
    for stat, recall in (rep.recall_at_1pct_fpr or {}).items():
        lines.append(f"  recall at 1% FPR ({stat}): {recall}")
    if rep.lead_time is not None:
        lt = rep.lead_time
        share = "n/a" if lt.share_caught_before is None else f"{lt.share_caught_before:.2f}"
        lines.append(f"  caught before the action: {share} (median lead {lt.summary.median} tokens)")
    h = rep.honesty.to_dict()
    lines.append(f"  honesty: {json.dumps({k: v for k, v in h.items() if not isinstance(v, (dict, list))})}")
    for name, entry in (rep.calibration_sets or {}).items():
        lines.append(f"  false alarms per 1,000 {name} tokens (streaming): {entry['false_alarms_per_1000_tokens']:.3f}")
    lines += [f"  note: {n}" for n in notes + ([rep.note] if rep.note else [])]
    lines.append(f"probe, report.json and plots/ written to {out}")
    return "\n".join(lines)

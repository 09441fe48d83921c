"""What the chosen probe does once deployed, beside the black-box monitor at the same false-alarm rate:
thresholds that hold on generic control text AND on benign replies to the scenarios (with false alarms
per 1,000 tokens), recall on held-out positives, traps (negations, refusals that name the act,
euphemisms, quoted threats) per type, and lead time to the action and to the first intent token.

The monitor reads the whole reply as it is generated (`ReplyOnly`), so by default everything here
scores reply tokens; a caller reading a saved probe passes its card's `score_positions` as `policy`.
The text monitor is fitted on the same training transcripts as the probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tripwire.activations.positions import PositionPolicy, PositionPolicyError
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_query import stored_rows_for
from tripwire.activations.store_types import Record
from tripwire.probes.baselines import StreamingTextMonitor
from tripwire.probes.fold_eval import FoldData, stream
from tripwire.probes.lead_time import leads_to_action_and_intent
from tripwire.probes.metrics import auroc_over_units
from tripwire.probes.scoring import decision_scores, statistic_values
from tripwire.probes.text_monitors import ngram_span_scores
from tripwire.probes.thresholds import (
    Threshold,
    calibrate_on_sets,
    false_alarms_per_1000_tokens,
    recall_at_thresholds,
    threshold_at_fpr,
)
from tripwire.probes.training.design_data import REPLY, Design, in_scored, reply_cuts


def text_monitor(data: FoldData, train: np.ndarray, seed: int = 0) -> StreamingTextMonitor:
    """The order-aware streaming monitor (word n-grams 1-3 or character n-grams, C chosen by grouped CV
    over the training transcripts, pairs kept whole), the one the fold verdicts compare against."""
    return StreamingTextMonitor.order_aware(seed=seed).fit(
        [data.texts[i] for i in train], [data.cuts[i] for i in train], data.labels[train], data.units[train])


def _scored_records(store: ResidualStore, policy: PositionPolicy = REPLY) -> list[Record]:
    return [r for r in store.records() if stored_rows_for(r, policy)[0]]


def benign_scores(est: Any, monitor: StreamingTextMonitor, stores: dict[str, ResidualStore], hook: str,
                  policy: PositionPolicy = REPLY
                  ) -> tuple[dict[str, list[np.ndarray]], dict[str, list[np.ndarray]], dict[str, str]]:
    """Probe and text-monitor scores over the scored (by default reply) tokens of every benign record, per set."""
    probe, text, hashes = {}, {}, {}
    for name, store in stores.items():
        records = _scored_records(store, policy)
        probe[name] = [decision_scores(est, store.activations(r, hook, policy)) for r in records]
        text[name] = [monitor.score(r.text, reply_cuts(r, stored_rows_for(r, policy)[0])) for r in records]
        hashes[name] = store.content_digest(records)
    return probe, text, hashes


def calibration(est: Any, monitor: StreamingTextMonitor, benign: dict[str, ResidualStore], hook: str, *,
                fpr: float, window: int, min_sizes: dict[str, int], n_boot: int, seed: int
                ) -> tuple[dict[str, Threshold], Threshold, dict[str, Any]]:
    """Probe thresholds (every statistic) and the text monitor's streaming threshold, both at `fpr` on
    every benign set, with the per-set false-alarm report."""
    probe_scores, text_scores, hashes = benign_scores(est, monitor, benign, hook)
    thresholds, probe_report = calibrate_on_sets(probe_scores, fpr, window, min_sizes=min_sizes, n_boot=n_boot,
                                                 seed=seed, hashes=hashes)
    text_thr, text_report = calibrate_on_sets(text_scores, fpr, window, min_sizes=min_sizes, n_boot=0, seed=seed)
    return thresholds, text_thr["streaming"], {
        "fpr_target": fpr, "sets": list(benign), "rule": "the highest per-set cut, so the FPR holds on every set",
        "probe": probe_report, "text_monitor": text_report,
        "text_monitor_streaming_threshold": text_thr["streaming"].value}


def held_thresholds_report(scores: Mapping[str, list[np.ndarray]], thresholds: Mapping[str, Threshold],
                           fpr: float, window: int) -> dict[str, dict[str, Any]]:
    """Per benign set, what thresholds set elsewhere (a probe card's) do there, in `calibrate_on_sets`'s
    report form: the set's own streaming cut at `fpr` beside the realised FPR of each given cut."""
    report = {}
    for name, set_scores in scores.items():
        streaming = statistic_values(set_scores, "streaming", window=window)
        report[name] = {
            "n_transcripts": len(set_scores),
            "n_tokens": int(sum(len(s) for s in set_scores)),
            "own_streaming_threshold": threshold_at_fpr(streaming, fpr),
            "realised_fpr_at_chosen": {stat: float(np.mean(statistic_values(set_scores, stat, window=window)
                                                           >= thr.value)) for stat, thr in thresholds.items()},
            "false_alarms_per_1000_tokens": false_alarms_per_1000_tokens(set_scores, thresholds["streaming"].value,
                                                                         window),
        }
    return report


def card_calibration(est: Any, monitor: StreamingTextMonitor, benign: dict[str, ResidualStore], hook: str,
                     thresholds: Mapping[str, Threshold], *, fpr: float, window: int, min_sizes: dict[str, int],
                     seed: int, policy: PositionPolicy) -> tuple[Threshold, dict[str, Any]]:
    """A saved probe keeps its card's `thresholds`; only the text monitor (fitted here, so without a
    card) gets a streaming threshold at `fpr` on every benign set. Both monitors' false alarms are
    reported per set, in the form `calibration` reports them."""
    probe_scores, text_scores, _ = benign_scores(est, monitor, benign, hook, policy)
    text_thr, text_report = calibrate_on_sets(text_scores, fpr, window, min_sizes=min_sizes, n_boot=0, seed=seed)
    return text_thr["streaming"], {
        "fpr_target": fpr, "sets": list(benign),
        "rule": "the probe keeps its card's thresholds; the text monitor takes the highest per-set cut, so its "
                "FPR holds on every set",
        "probe": held_thresholds_report(probe_scores, thresholds, fpr, window), "text_monitor": text_report,
        "text_monitor_streaming_threshold": text_thr["streaming"].value}


def reply_readings(est: Any, monitor: StreamingTextMonitor, design: Design, idx: np.ndarray, hook: str,
                   policy: PositionPolicy = REPLY) -> list[dict[str, Any]]:
    """Per record of `idx` with scored tokens: probe and text-monitor scores, and where the action and
    the first intent token fall among the scored tokens."""
    out = []
    rows = design.rows(hook, policy)
    for i in idx.tolist():
        r = design.records[i]
        pos = stored_rows_for(r, policy)[0]
        if not pos:
            continue
        out.append({"i": i, "probe": decision_scores(est, rows[i]), "text": monitor.score(r.text, reply_cuts(r, pos)),
                    "action": in_scored(pos, r.action_token_index),
                    "intent": in_scored(pos, r.meta.get("intent_token_index"))})
    return out


def recall_and_leads(est: Any, monitor: StreamingTextMonitor, design: Design, test: np.ndarray, hook: str,
                     thresholds: Mapping[str, Threshold], text_threshold: Threshold, n_boot: int, seed: int,
                     policy: PositionPolicy = REPLY) -> dict[str, Any]:
    """Recall at the calibrated cuts on held-out positives; leads (probe and text monitor, each at its
    own cut for the same FPR) to the action and to the intent token, on positives that have both."""
    positives = test[design.labels[test] == 1]
    readings = reply_readings(est, monitor, design, positives, hook, policy)
    if not readings:
        return {"recall": None, "lead_time": None, "note": "no held-out positives with reply tokens"}
    recall = recall_at_thresholds([x["probe"] for x in readings], thresholds,
                                  action_token_indices=[x["action"] for x in readings], n_boot=n_boot, seed=seed)
    text_recall = recall_at_thresholds([x["text"] for x in readings], {"streaming": text_threshold}, n_boot=n_boot,
                                       seed=seed)
    both = [x for x in readings if x["action"] is not None and x["intent"] is not None]
    leads = None
    if both:
        actions, intents = [x["action"] for x in both], [x["intent"] for x in both]
        leads = {"n": len(both),
                 "probe": leads_to_action_and_intent([x["probe"] for x in both], actions, intents,
                                                     thresholds["streaming"]),
                 "text_monitor": leads_to_action_and_intent([x["text"] for x in both], actions, intents,
                                                            text_threshold)}
    return {"n_positive": len(readings), "interval_over": "transcripts",
            "recall": {k: v.to_dict() for k, v in recall.items()},
            "text_monitor_recall_streaming": text_recall["streaming"].to_dict(),
            "lead_time": leads,
            "lead_note": None if leads else "no held-out positive has both an action and an intent token"}


def traps(est: Any, monitor: StreamingTextMonitor, train_data: FoldData, train: np.ndarray, traps_design: Design,
          hook: str, thresholds: dict[str, Threshold], text_threshold: Threshold, window: int, n_boot: int,
          seed: int) -> dict[str, Any]:
    """Per trap type: AUROC of the probe, the span n-gram monitor (i) and the text monitor (ii) over each
    trap's window where it has both labels, and the share of its transcripts each monitor flags at its
    calibrated cut over the whole reply (false alarms on label-0 traps are the point)."""
    try:
        rows = traps_design.rows(hook)
        data = traps_design.fold_data()
    except (PositionPolicyError, ValueError) as error:
        return {"not_run": f"trap windows could not be read: {error}"}
    span_scores, _ = ngram_span_scores([train_data.spans[i] for i in train], train_data.labels[train], data.spans,
                                       groups=train_data.units[train], seed=seed)
    reading = reply_readings(est, monitor, traps_design, np.arange(len(traps_design)), hook)
    by_i = {x["i"]: x for x in reading}
    kinds = sorted({str(r.meta.get("trap", "?")) for r in traps_design.records})
    all_units, over = traps_design.units()  # negation minimal pairs move together
    out: dict[str, Any] = {}
    for kind in kinds:
        idx = np.array([i for i, r in enumerate(traps_design.records) if str(r.meta.get("trap", "?")) == kind])
        y = traps_design.labels[idx]
        entry: dict[str, Any] = {"n": int(idx.size), "n_positive": int(y.sum()), "interval_over": over}
        if np.unique(y).size == 2:

            def metric(values: np.ndarray, y: np.ndarray = y, units: np.ndarray = all_units[idx]) -> dict[str, Any]:
                return auroc_over_units(y, values, units, over, n_boot=n_boot, seed=seed).to_dict()

            entry["probe_auroc"] = metric(stream([decision_scores(est, rows[i]) for i in idx], window))
            entry["span_bag_of_words_auroc"] = metric(span_scores[idx])
            entry["text_monitor_auroc"] = metric(stream([monitor.score(data.texts[i], data.cuts[i]) for i in idx],
                                                        window))
        else:
            entry["auroc_note"] = "one label only: AUROC undefined, see the flag rates"
        flagged = [by_i[i] for i in idx.tolist() if i in by_i]
        for name, thr, key in (("probe", thresholds["streaming"], "probe"), ("text_monitor", text_threshold, "text")):
            for label in (0, 1):
                part = [x for x in flagged if traps_design.labels[x["i"]] == label]
                rate = (float(np.mean(stream([x[key] for x in part], window) >= thr.value)) if part else None)
                entry[f"{name}_flag_rate_label{label}"] = rate
        out[kind] = entry
    return out

"""Train a probe from a store: layer x method sweep on a grouped split, thresholds fitted on one half of
the control set and their false-positive rates read on the other, lead time before the action, and the
honesty checks beside every number."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tripwire.activations.hooks import HookPointError, absolute_hook_point
from tripwire.activations.positions import BeforeAction, PositionPolicy, ReplyOnly
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_query import stored_rows_for
from tripwire.activations.store_types import Record
from tripwire.errors import UsageError
from tripwire.probes import (
    HonestyReport,
    LayerData,
    LeadTimeResult,
    SweepResult,
    Threshold,
    UnitMetric,
    grouped_split,
    honesty_checks,
    lead_times,
    recall_at_thresholds,
    run_sweep,
)
from tripwire.probes.datasets import TokenDataset, token_dataset
from tripwire.probes.estimators import PROBE_METHODS, LogisticProbe
from tripwire.probes.honesty import lexical_baseline_on
from tripwire.probes.metrics import auroc_ci
from tripwire.probes.scoring import DEFAULT_WINDOW, statistic_values
from tripwire.probes.splits import GroupedSplit, label_word_pattern, remove_words
from tripwire.probes.streaming import record_scores
from tripwire.probes.thresholds import DEFAULT_FPR, Halves, calibrate_on_halves, split_half
from tripwire.probes.training.design_verdict import dropped_entry, unscored_reason
from tripwire.strict_json import dumps

METHOD_NAMES = ("lr", "diffmean", "lda", "lat")


def estimators(names: Sequence[str], C: float = 1e-3) -> dict[str, Any]:
    """Unfitted estimators by card name; the sweep fits a `clone` of each."""
    unknown = [n for n in names if n not in PROBE_METHODS]
    if unknown:
        raise UsageError(f"unknown method(s) {unknown}; choose from {', '.join(METHOD_NAMES)} or 'all'.")
    return {n: LogisticProbe(C=C) if n == "lr" else PROBE_METHODS[n]() for n in names}


def layer_of(hook_point: str) -> int:
    """The layer of a stored (absolute) hook name."""
    try:
        return absolute_hook_point(hook_point).layer
    except HookPointError:
        raise UsageError(f"cannot read a layer from hook point {hook_point!r}; hook points look like "
                         "blocks.5.resid_post") from None


@dataclass
class TrainSettings:
    label: str
    methods: tuple[str, ...] = METHOD_NAMES
    layers: tuple[int, ...] | None = None  # None = every layer in the store
    site: str = "resid_post"
    train_policy: PositionPolicy = field(default_factory=BeforeAction)
    score_policy: PositionPolicy = field(default_factory=ReplyOnly)  # tokens scored per transcript
    max_tokens_per_transcript: int = 48
    C: float = 1e-3  # inverse L2 strength of the logistic probe (on standardised features)
    window: int = DEFAULT_WINDOW
    fpr: float = DEFAULT_FPR
    min_control: int = 1000  # the 1% tail needs at least this many control transcripts
    n_boot: int = 500
    seed: int = 0


@dataclass
class TrainReport:
    """What `report.json` says: the selection, held-out metrics, calibration and honesty checks."""

    label: str
    layer: int
    method: str
    hook_point: str
    sweep: SweepResult
    split_sizes: dict[str, int]
    test_auroc_by_statistic: dict[str, UnitMetric]
    thresholds: dict[str, Threshold] | None
    recall_at_1pct_fpr: dict[str, UnitMetric] | None
    lead_time: LeadTimeResult | None
    lexical_text: str
    word_masked: dict[str, Any]
    honesty: HonestyReport
    resid_norm: float
    training_data_hash: str
    n_training_records: int
    note: str | None = None
    # per benign set (`thresholds.report_on_halves`): realised FPR and false alarms per 1,000 tokens on its
    # held-out half, the calibration half's in sample beside them, and the records set aside ("dropped")
    calibration_sets: dict[str, Any] | None = None

    def _repr_html_(self) -> str:
        """For notebooks: the selection, held-out AUROC per statistic, recall at the thresholds, honesty."""
        rows = [("selected", f"layer {self.layer} / {self.method} ({self.hook_point})"),
                ("split (transcripts)", ", ".join(f"{k} {v}" for k, v in self.split_sizes.items()))]
        rows += [(f"test AUROC ({k})", str(v)) for k, v in self.test_auroc_by_statistic.items()]
        rows += [(f"recall at 1% FPR ({k})", str(v)) for k, v in (self.recall_at_1pct_fpr or {}).items()]
        rows += [(f"honesty: {k}", str(v)) for k, v in self.honesty.to_dict().items()
                 if not isinstance(v, (dict, list))]
        if self.note:
            rows.append(("note", self.note))
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table><caption>{html.escape(self.label)} probe: training report</caption>{body}</table>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "selected": {"layer": self.layer, "method": self.method, "hook_point": self.hook_point},
            "sweep": self.sweep.to_dict(),
            "split": self.split_sizes,
            "test_auroc_by_statistic": {k: v.to_dict() for k, v in self.test_auroc_by_statistic.items()},
            "thresholds": None if self.thresholds is None else {k: v.to_dict() for k, v in self.thresholds.items()},
            "recall_at_1pct_fpr": None if self.recall_at_1pct_fpr is None
            else {k: v.to_dict() for k, v in self.recall_at_1pct_fpr.items()},
            "lead_time": None if self.lead_time is None else self.lead_time.to_dict(),
            "lexical_text": self.lexical_text,
            "word_masked": self.word_masked,
            "honesty": self.honesty.to_dict(),
            "resid_norm": self.resid_norm,
            "training_data_hash": self.training_data_hash,
            "n_training_records": self.n_training_records,
            "calibration_sets": self.calibration_sets,
            "note": self.note,
        }


@dataclass
class TrainResult:
    estimator: Any
    split: GroupedSplit  # over transcripts
    dataset: TokenDataset
    test_scores: list[np.ndarray]  # per test transcript, the card's scored tokens in order
    test_records: list[Record]
    control_scores: list[np.ndarray] | None
    report: TrainReport
    settings: TrainSettings


def _hooks(store: ResidualStore, settings: TrainSettings) -> dict[int, str]:
    hooks = {layer_of(h): h for h in store.manifest.hook_points if h.endswith(f".{settings.site}")}
    if not hooks:
        raise UsageError(f"the store has no {settings.site} hook points: {store.manifest.hook_points}")
    if settings.layers is not None:
        missing = [layer for layer in settings.layers if layer not in hooks]
        if missing:
            raise UsageError(f"layers {missing} are not in the store; it has layers {sorted(hooks)}.")
        hooks = {layer: hooks[layer] for layer in settings.layers}
    return dict(sorted(hooks.items()))


def _row_split(ds: TokenDataset, split: GroupedSplit) -> GroupedSplit:
    def rows(part: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(ds.transcript, part))

    return GroupedSplit(rows(split.train), rows(split.val), rows(split.test), split.seed)


def action_in_scored(record: Record, positions: list[int]) -> int | None:
    """Index of the action's first token within the scored positions (None without an action)."""
    a = record.action_token_index
    return None if a is None else int(sum(p < a for p in positions))


def train_probe(store: ResidualStore, settings: TrainSettings, control: ResidualStore | None = None,
                progress: bool = True, benign: ResidualStore | None = None) -> TrainResult:
    """`benign`: a store of benign scenario replies (label 0); thresholds then hold the FPR on it AND on
    `control` (each statistic takes the higher cut). Cuts are fitted on each set's calibration half
    (`score_halves`) and every false-positive rate and false alarms per 1,000 tokens is read on its
    held-out half, so a card's `n_control` and `calibration_hash` name that half."""
    hooks = _hooks(store, settings)
    datasets: dict[int, TokenDataset] = {}

    def load(layer: int) -> LayerData:
        # Same records, positions and subsampling seed at every layer, so one row split fits all.
        if layer not in datasets:
            datasets.clear()  # one layer in memory at a time
            datasets[layer] = token_dataset(store, hooks[layer], settings.label, settings.train_policy,
                                            settings.max_tokens_per_transcript, seed=settings.seed)
        ds = datasets[layer]
        return LayerData(ds.X, ds.y, ds.row_groups, ds.row_pairs, ds.transcript)

    first = next(iter(hooks))
    load(first)
    ds0 = datasets[first]
    split = grouped_split(ds0.groups, ds0.labels, seed=settings.seed)
    methods = estimators(list(settings.methods), settings.C)
    sweep = run_sweep(load, methods, layers=list(hooks), split=_row_split(ds0, split), n_boot=settings.n_boot,
                      seed=settings.seed, progress=progress)
    layer, method = sweep.selected
    hook = hooks[layer]
    load(layer)
    ds = datasets[layer]
    est = sweep.best_estimator
    policy = settings.score_policy
    test_records = [ds.records[i] for i in split.test]
    test_scores = record_scores(est, store, hook, test_records, policy)  # one record's rows in memory at a time
    test_labels = ds.labels[split.test]
    positions = [stored_rows_for(r, policy)[0] for r in test_records]
    actions = [action_in_scored(r, p) for r, p in zip(test_records, positions, strict=True)]
    boot = {"n_boot": settings.n_boot, "seed": settings.seed}
    test_auroc = {
        stat: auroc_ci(test_labels, statistic_values(test_scores, stat, action_token_indices=actions,
                                                     window=settings.window),
                       n_boot=settings.n_boot, seed=settings.seed, over="transcripts")
        for stat in ("mean", "max", "last", "topk_mean", "before_action", "streaming")
    }
    thresholds = recall = lead = None
    calibration_sets: dict[str, Any] | None = None
    control_scores = None
    note = None
    if control is not None:
        stores = {"control": control, **({"benign": benign} if benign is not None else {})}
        read = {name: score_halves(est, s, hook, policy, settings.seed) for name, s in stores.items()}
        control_scores = read["control"].scored
        scored = {name: len(b.halves.calibration) + len(b.halves.held_out) for name, b in read.items()}
        min_sizes = {"control": settings.min_control, "benign": min(settings.min_control, scored.get("benign", 0))}
        thresholds, per_set = calibrate_on_halves({n: b.halves for n, b in read.items()}, fpr=settings.fpr,
                                                  window=settings.window, min_sizes=min_sizes, n_boot=settings.n_boot,
                                                  seed=settings.seed,
                                                  hashes={n: b.calibration_hash for n, b in read.items()})
        calibration_sets = {n: {**per_set[n], "dropped": read[n].dropped} for n in per_set}
        positives = [s for s, y in zip(test_scores, test_labels, strict=True) if y == 1]
        pos_actions = [a for a, y in zip(actions, test_labels, strict=True) if y == 1]
        recall = recall_at_thresholds(positives, thresholds, action_token_indices=pos_actions, **boot)
        with_action = [(s, a) for s, a in zip(positives, pos_actions, strict=True) if a is not None]
        if with_action:
            lead = lead_times([s for s, _ in with_action], [a for _, a in with_action], thresholds["streaming"],
                              window=settings.window)
    else:
        note = "no control store given: thresholds, recall at 1% FPR and lead time are not computed"

    # The lexical baseline reads the same text the probe reads: the reply, or prompt + reply.
    texts = ds.texts if _reply_only(settings) else [r.text for r in ds.records]
    word_masked = word_masked_check(texts=texts, result_scores=test_scores, records=test_records,
                                    labels=test_labels, positions=positions,
                                    dataset=ds, split=split, **boot)
    honesty = honesty_checks(ds.pooled(), ds.labels, texts, split, methods[method], label_words=ds.label_words,
                             pair_ids=ds.pair_ids, groups=ds.groups, n_boot=settings.n_boot, seed=settings.seed)
    report = TrainReport(
        label=settings.label, layer=layer, method=method, hook_point=hook, sweep=sweep,
        split_sizes={k: int(len(getattr(split, k))) for k in ("train", "val", "test")},
        test_auroc_by_statistic=test_auroc, thresholds=thresholds, recall_at_1pct_fpr=recall, lead_time=lead,
        lexical_text="reply" if _reply_only(settings) else "prompt and reply", word_masked=word_masked,
        honesty=honesty, resid_norm=float(np.linalg.norm(ds.X, axis=1).mean()),
        training_data_hash=ds.data_hash(store.content_digest(ds.records)), n_training_records=len(ds.records),
        note=note, calibration_sets=calibration_sets,
    )
    return TrainResult(est, split, ds, test_scores, test_records, control_scores, report, settings)


@dataclass(frozen=True)
class BenignRead:
    """One benign store scored for calibration: its halves (`thresholds.split_half` over every record, so
    the split is the one `design_verdict.benign_halves` finds again), the digest of the calibration half's
    scored records (what a card's `calibration_hash` names), and the records set aside, with why."""

    halves: Halves
    calibration_hash: str | None
    dropped: list[dict[str, Any]]
    scored: list[np.ndarray]  # every scored record's tokens, in store order (for plots)


def score_halves(est: Any, store: ResidualStore, hook: str, policy: PositionPolicy, seed: int) -> BenignRead:
    """Score every record of `store`, split by `split_half`; a record without scored tokens under `policy`
    is listed with its reason and half, never silently left out of the rates."""
    records = store.records()
    scores = record_scores(est, store, hook, records, policy)
    sides = dict(zip(("calibration_half", "held_out_half"), split_half([r.record_id for r in records], seed),
                     strict=True))
    kept = {side: [int(i) for i in idx if len(scores[i])] for side, idx in sides.items()}
    dropped = [dropped_entry(records[i], unscored_reason(records[i], policy)
                             or f"{type(policy).__name__} scores no token", half=side)
               for side, idx in sides.items() for i in idx.tolist() if not len(scores[i])]
    cal = kept["calibration_half"]
    halves = Halves([scores[i] for i in cal], [scores[i] for i in kept["held_out_half"]], seed, len(records))
    return BenignRead(halves, store.content_digest([records[i] for i in cal]) if cal else None, dropped,
                      [s for s in scores if len(s)])


def _reply_only(settings: TrainSettings) -> bool:
    return all(isinstance(p, (ReplyOnly, BeforeAction)) for p in (settings.train_policy, settings.score_policy))


def word_masked_check(texts: list[str], result_scores: list[np.ndarray], records: list[Record], labels: np.ndarray,
                      positions: list[list[int]], dataset: TokenDataset, split: GroupedSplit, n_boot: int,
                      seed: int) -> dict[str, Any]:
    """Word-filtered evaluation that works even when every transcript contains a label word: the probe's
    transcript score is the mean over tokens that are NOT part of a label-giving word, and the lexical
    baseline is refitted on texts with those words deleted."""
    pattern = label_word_pattern(dataset.label_words) if dataset.label_words else None
    means = []
    for scores, record, pos in zip(result_scores, records, positions, strict=True):
        hits = [(m.start(), m.end()) for m in pattern.finditer(record.text)] if pattern else []
        spans = record.token_char_spans or []
        keep = [k for k, p in enumerate(pos) if not any(a < spans[p][1] and spans[p][0] < b for a, b in hits)]
        means.append(float(np.mean(scores[keep])) if keep else float(np.mean(scores)))
    texts = remove_words(texts, dataset.label_words) if pattern else texts
    return {
        "n_label_words": len(dataset.label_words),
        "probe_auroc_without_label_word_tokens": auroc_ci(labels, np.asarray(means), n_boot=n_boot, seed=seed).to_dict(),
        "lexical_auroc_without_label_words": lexical_baseline_on(texts, dataset.labels, split, n_boot=n_boot, seed=seed),
    }


def write_report(result: TrainResult, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.json"
    path.write_text(dumps(result.report.to_dict()))
    return path

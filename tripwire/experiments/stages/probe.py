"""The `probe` pipeline: a contrast set captured on the run's model -> layer x method sweep on a grouped
split (`train.train_probe`) -> a card -> the generalisation matrix -> honesty checks -> a per-token view
of a held-out scenario transcript.

The probe folder stays in the stage's cache (`<cache>/probe`), so a later stage reads it as
`stage:<name>`; its card also goes into the stage output's `cards` (the run folder's `cards/`). Stores
resume by record id; the training itself is redone if the stage is interrupted after capture (seconds).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tripwire.activations.hooks import hook_spec
from tripwire.activations.positions import BeforeAction, BeforeAnchor, PositionPolicy, ReplyOnly
from tripwire.activations.store import ResidualStore
from tripwire.experiments.config import ProbeOptions
from tripwire.experiments.report_figures import roc_figure, strip_figure, sweep_figure
from tripwire.experiments.runs import StageCache
from tripwire.experiments.stages.base import PROBE_FOLDER, Context, Section, StagePlan, Table
from tripwire.experiments.stages.data import CaptureSet, capture_set, capture_set_for, plan_sets
from tripwire.experiments.stages.outputs import (
    Generalisation,
    GeneralisationNotRun,
    ProbeOutput,
    TokenReading,
)
from tripwire.probes.generalisation import GeneralisationError, generalisation_matrix
from tripwire.probes.persistence import CARD_FILE, LoadedProbe, load_probe, save_probe
from tripwire.probes.reading import read_record
from tripwire.probes.scoring import statistic_values
from tripwire.probes.thresholds import MIN_CONTROL
from tripwire.probes.training.evaluate import write_training_records
from tripwire.probes.training.probe_train import card_for
from tripwire.probes.training.train import TrainResult, TrainSettings, estimators, train_probe
from tripwire.strict_json import strict_json

GENERALISE_BY = {"coercion": "kind", "eval_awareness": "variant"}  # record meta keys
TRAIN_POSITIONS = {"coercion": "before_anchor", "eval_awareness": "reply"}


def _policy(name: str) -> PositionPolicy:
    return {"before_anchor": BeforeAnchor, "before_action": BeforeAction, "reply": ReplyOnly}[name]()


def probe_targets(ctx: Context, options: ProbeOptions) -> list[CaptureSet]:
    """The stage's capture targets (contrast set, control set, and the benign set if any); a later stage
    may read their stores."""
    hooks = [hook_spec(layer) for layer in options.layers]
    args = (options.batch_size, options.store_dtype)
    by = options.generalise_by or GENERALISE_BY[options.label]
    return [capture_set_for(ctx, options.data, options.limit, hooks, *args, spread_by=by),
            capture_set_for(ctx, options.control, options.control_limit, hooks, *args),
            *([capture_set_for(ctx, options.benign, options.control_limit, hooks, *args)] if options.benign else [])]


def generalisation(result: TrainResult, by: str) -> Generalisation | GeneralisationNotRun:
    """Train on one value of record meta `by` (a scenario kind, a cue), AUROC on each other value;
    `matrix` None with `not_run` when the data cannot support it (a value with one class, one value)."""
    ds = result.dataset
    values = [r.meta.get(by) for r in ds.records]
    if any(v is None for v in values):
        return GeneralisationNotRun(by=by, matrix=None, not_run=f"some records carry no {by!r} in their meta")
    names = np.array([str(v) for v in values])
    subsets = {v: names == v for v in sorted(set(names.tolist()))}
    method = result.report.method
    try:
        matrix = generalisation_matrix(ds.pooled(), ds.labels, subsets, estimators([method], result.settings.C)[method],
                                       pair_ids=ds.pair_ids if method == "lat" else None)
    except GeneralisationError as error:
        return GeneralisationNotRun(by=by, matrix=None, not_run=str(error))
    sizes = {v: int(m.sum()) for v, m in subsets.items()}
    return Generalisation.build(by=by, method=method, statistic="mean score over the training positions",
                                matrix=matrix, sizes=sizes)


def example_reading(probe: LoadedProbe, store: ResidualStore, result: TrainResult) -> TokenReading | None:
    """The probe's reading of one held-out transcript, as its card says: the first positive with an
    action (so the strip shows where the harm begins), else the first positive, else the first."""
    records = result.test_records
    labels = result.dataset.labels[result.split.test]
    order = ([i for i, y in enumerate(labels) if y == 1 and records[i].action_token_index is not None]
             + [i for i, y in enumerate(labels) if y == 1] + list(range(len(records))))
    if not order:
        return None
    record = records[order[0]]
    reading = read_record(probe, store, record).to_dict()
    reading.pop("positions")
    return TokenReading.build(record_id=record.record_id, condition_id=record.condition_id,
                              label=int(labels[order[0]]), **reading)


class ProbePipeline:
    name = "probe"
    output_type = ProbeOutput

    def key(self, ctx: Context, options: ProbeOptions) -> dict[str, Any]:
        return {"pipeline": self.name, **ctx.model_key(), "options": options.model_dump(mode="json")}

    def plan(self, ctx: Context, options: ProbeOptions, cache: StageCache) -> StagePlan:
        sequences, tokens, eta = plan_sets(ctx, probe_targets(ctx, options))
        sets = options.control + (f" + {options.benign}" if options.benign else "")
        return StagePlan(f"probe ({options.label}): capture {options.data} (limit {options.limit}) and "
                         f"{sets} (limit {options.control_limit}) at layers {options.layers}, sweep "
                         f"{'/'.join(options.methods)}", forwards=sequences, tokens=tokens, eta_seconds=eta)

    def run(self, ctx: Context, options: ProbeOptions, cache: StageCache) -> ProbeOutput:
        data_cfg, control_cfg, *benign_cfg = probe_targets(ctx, options)
        store = capture_set(ctx, data_cfg)
        control = capture_set(ctx, control_cfg)
        benign = capture_set(ctx, benign_cfg[0]) if benign_cfg else None
        settings = TrainSettings(label=options.label, methods=tuple(options.methods), layers=None,
                                 train_policy=_policy(options.train_positions or TRAIN_POSITIONS[options.label]),
                                 max_tokens_per_transcript=options.max_tokens_per_transcript, window=options.window,
                                 fpr=options.fpr, min_control=len(control), n_boot=options.n_boot, seed=ctx.cfg.seed)
        result = train_probe(store, settings, control, progress=ctx.progress, benign=benign)
        folder = cache.root / PROBE_FOLDER
        card = card_for(result, store)
        save_probe(result.estimator, folder, card=card, overwrite=True)
        write_training_records(folder, [result.dataset.records[i].record_id for i in result.split.train],
                               card.training_data_hash)
        probe = load_probe(folder)  # read back: every number below comes from the saved probe
        labels = result.dataset.labels[result.split.test]
        curves = {stat: statistic_values(result.test_scores, stat, window=options.window)
                  for stat in ("streaming", "mean")}
        report = strict_json(result.report.to_dict())
        return ProbeOutput.build(
            label=options.label, dataset=options.data, control=options.control, n_records=len(store),
            n_control=len(control), benign=options.benign, n_benign=None if benign is None else len(benign),
            hook_point=probe.card.hook_point, layer=probe.card.layer, method=report["selected"]["method"],
            report=report, roc={"labels": labels.tolist(), **curves},
            generalisation=generalisation(result, options.generalise_by or GENERALISE_BY[options.label]),
            example=example_reading(probe, store, result), probe_folder=str(folder),
            cards={options.label: json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))})

    def section(self, output: ProbeOutput) -> Section:
        rep, label = output.report, output.label
        honesty = rep["honesty"]
        stream = rep["test_auroc_by_statistic"]["streaming"]
        sweep_rows = [[r["layer"], r["method"], r["val_auroc"], r["test_auroc"]["value"],
                       _ci(r["test_auroc"])] for r in rep["sweep"]["rows"]]
        headline = [
            f"{label} probe: layer {output.layer} / {output.method} at {output.hook_point} (chosen on "
            f"validation); held-out test AUROC (streaming statistic) {_metric(stream)}, against the "
            f"bag-of-words baseline {_metric(honesty['lexical_auroc'])}, the random-direction 95th percentile "
            f"{honesty['random_direction_p95']:.3f} and the shuffled-label probe {_metric(honesty['shuffled_label_auroc'])}"
            " (chance = 0.5)"]
        recall = (rep.get("recall_at_1pct_fpr") or {}).get("streaming")
        if recall is not None:
            headline.append(f"recall at the {rep['thresholds']['streaming']['fpr_target']:.0%} false-positive "
                            f"threshold (fitted on half of {output.n_control} {output.control} transcripts"
                            + (f" and of {output.n_benign} {output.benign}" if output.benign else "") + ", its "
                            "false-positive rate read on the other half): "
                            f"{_metric(recall)}, against that held-out false-positive rate on control")
        tables = [
            Table("Layer x method sweep (selection on the validation split)", ["layer", "method", "val AUROC",
                                                                               "test AUROC", "95% CI"], sweep_rows,
                  "0.5 (chance) and the other cells; the starred cell in the figure was chosen on validation only, "
                  "so its test number is not inflated by the choice"),
            Table("Honesty checks (n/a = could not run)", ["check", "value"], _honesty_rows(honesty),
                  "the probe's own test AUROC: a probe that does not beat the bag-of-words text baseline or "
                  "random directions reads words, not the model's state"),
        ]
        gen = output.generalisation
        if isinstance(gen, Generalisation):
            names = sorted(gen.matrix)
            tables.append(Table(f"Generalisation: train on one {gen.by}, test on another (AUROC)",
                                ["trained on", *names],
                                [[a, *[gen.matrix[a].get(b) for b in names]] for a in names],
                                "0.5 (chance); the diagonal is in-sample and not shown (n/a)"))
        roc = output.roc
        figures = [sweep_figure(rep["sweep"]),
                   roc_figure(roc.labels, {"streaming": roc.streaming, "mean": roc.mean},
                              f"{label} probe: ROC on the held-out test split")]
        example = output.example
        if example is not None:
            figures.append(strip_figure(example, f"{label} probe per token: {example.condition_id} "
                                                 f"(label {example.label}; orange = the action span)"))
        caveats = [f"Test split: {rep['split']['test']} transcripts from template families never trained on; "
                   "the bootstrap intervals resample transcripts, not families, so they understate the spread "
                   "between families.",
                   *honesty.get("notes", [])]
        if isinstance(gen, GeneralisationNotRun):
            caveats.append(f"Generalisation matrix not computed: {gen.not_run}")
        if not output.benign:
            caveats.append("Thresholds hold on generic chat text only; replies to the scenarios read differently, so "
                           "the probe may fire on harmless scenario replies too (set `benign: benign_scenario`).")
        if output.n_control < MIN_CONTROL:
            caveats.append(f"Thresholds rest on {output.n_control} control transcripts: the 1% tail is a handful "
                           f"of them (the shipped probes use >= {MIN_CONTROL}).")
        if rep.get("note"):
            caveats.append(rep["note"])
        return Section(
            title=f"Probe: {label}",
            what=(f"Teacher-forced capture of {output.n_records} {output.dataset} transcripts (reply tokens) "
                  f"and {output.n_control} {output.control} transcripts; a layer x method sweep on a split by "
                  "template family; the card's thresholds calibrated on the control set; the card is in cards/."),
            headline=headline, tables=tables, figures=figures, caveats=caveats)


def _metric(m: dict[str, Any] | None) -> str:
    if m is None or m.get("value") is None:
        return "n/a"
    return f"{m['value']:.3f} [{_ci(m)}]"


def _ci(m: dict[str, Any]) -> str:
    if m.get("low") is None or not m.get("n_boot"):
        return "n/a (no bootstrap)"
    return f"{m['low']:.3f}, {m['high']:.3f}"


def _honesty_rows(h: dict[str, Any]) -> list[list[Any]]:
    def val(key: str) -> Any:
        v = h.get(key)
        return _metric(v) if isinstance(v, dict) else v

    keys = ("probe_auroc", "lexical_auroc", "word_filtered_probe_auroc", "word_filtered_lexical_auroc",
            "n_word_filtered", "shuffled_label_auroc", "random_direction_mean", "random_direction_p95",
            "beats_lexical", "beats_random_directions", "shuffled_off_chance", "reads_words_only")
    return [[k, val(k)] for k in keys]

"""The `probe` pipeline: a contrast set captured on the run's model -> layer x method sweep on a grouped
split (`train.train_probe`) -> a card -> the generalisation matrix -> honesty checks -> a per-token view
of a held-out scenario transcript.

The probe folder stays in the stage's cache (`<cache>/probe`), so a later stage reads it as
`stage:<name>`; its card also goes into the stage output's `cards` (the run folder's `cards/`). Stores
resume by record id; the training itself is redone if the stage is interrupted after capture (seconds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
from tripwire.probes.metrics import interval_text
from tripwire.probes.persistence import CARD_FILE, LoadedProbe, load_probe, save_probe
from tripwire.probes.reading import read_record
from tripwire.probes.scoring import DEFAULT_WINDOW, STREAMING, statistic_values
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
        honesty, words = rep["honesty"], ProbeWords.of(output)
        deployed = rep["test_auroc_by_statistic"].get(words.stat)
        lexical = honesty["lexical_auroc"]
        headline = [
            f"{label} probe: layer {output.layer} / {output.method} at {output.hook_point} (chosen on validation); "
            f"{words.headline_name}: {interval_text(deployed)}, against the bag-of-words baseline (TF-IDF + logistic "
            f"regression on the {rep['lexical_text']}) on the same held-out test split: {interval_text(lexical)} "
            "(chance = 0.5)",
            f"honesty checks, each on every transcript's {words.pooled} and the held-out test split: the probe's "
            f"method refit there: AUROC {interval_text(honesty['probe_auroc'])}, against the random-direction 95th "
            f"percentile {honesty['random_direction_p95']:.3f} and the shuffled-label probe "
            f"{interval_text(honesty['shuffled_label_auroc'])}"]
        if _below_chance(deployed):
            headline.append(f"The {words.headline_name} has its whole 95% interval below 0.5: {INVERTED}.")
        recall = (rep.get("recall_at_1pct_fpr") or {}).get(words.stat)
        if recall is not None:
            headline.append(_recall_line(output, words, recall))
        tables = [
            Table("Layer x method sweep: each cell chosen on the validation split; its test column reads the mean "
                  f"score over {words.trained}, not the deployed statistic, so it differs from the headline",
                  ["layer", "method", f"validation AUROC ({words.val_stat})",
                   f"held-out test AUROC ({words.sweep_stat})", "95% CI (held-out test)"],
                  [[r["layer"], r["method"], r["val_auroc"], r["test_auroc"]["value"], _ci(r["test_auroc"])]
                   for r in rep["sweep"]["rows"]],
                  "0.5 (chance) and the other cells; the starred cell in the figure was chosen on validation only, "
                  "so its test number is not inflated by the choice"),
            Table(f"Honesty checks on the held-out test split, on each transcript's {words.pooled} (not the deployed "
                  "statistic; n/a = could not run)", ["check", "value", "report.json key"],
                  _honesty_rows(honesty, words, rep["lexical_text"]),
                  f"the probe's own held-out test AUROC on the {words.pooled} (first row): a probe that does not beat "
                  "the bag-of-words text baseline or random directions reads words, not the model's state"),
        ]
        gen = output.generalisation
        if isinstance(gen, Generalisation):
            names = sorted(gen.matrix)
            tables.append(Table(f"Generalisation: train on one {gen.by}, test on another (AUROC of the {gen.statistic}, "
                                f"on all transcripts of each other {gen.by})", ["trained on", *names],
                                [[a, *[gen.matrix[a].get(b) for b in names]] for a in names],
                                "0.5 (chance); the diagonal is in-sample and not shown (n/a)"))
        roc = output.roc
        sweep = sweep_figure(rep["sweep"]).update_layout(  # the statistic the axis reads, named (one short line)
            title_text="Layer x method sweep: held-out test AUROC, mean score (95% CI); star = chosen on validation",
            yaxis_title_text="held-out test AUROC (mean score)")
        figures = [sweep, roc_figure(roc.labels, {f"{words.deployed_short}, held-out test": roc.streaming,
                                                  "mean score, held-out test": roc.mean},
                                     f"{label} probe: ROC on the held-out test split")]
        example = output.example
        if example is not None:
            figures.append(strip_figure(example, f"{label} probe per token: {example.condition_id} "
                                                 f"(label {example.label})"))
        return Section(
            title=f"Probe: {label}",
            what=(f"Teacher-forced capture of {output.n_records} {output.dataset} transcripts (reply tokens) "
                  f"and {output.n_control} {output.control} transcripts; a layer x method sweep on a split by "
                  "template family; the card's thresholds calibrated on the control set; the card is in cards/."),
            headline=headline, tables=tables, figures=figures, caveats=_caveats(output, words),
            finding=(f"Probe {label}: {words.headline_name} {interval_text(deployed)}, against the bag-of-words text "
                     f"baseline's {interval_text(lexical)} on the same split (chance 0.5)"
                     + (f"; the interval lies below 0.5: {INVERTED}" if _below_chance(deployed) else "") + "."),
            limits=[PROBE_LIMIT])


INVERTED = ("on the held-out split the probe's direction is inverted relative to training: it ranks the classes the "
            "wrong way round, which is not a signal (flipping its sign after seeing the test split would fit the "
            "test split)")
PROBE_LIMIT = ("A probe that separates two sets of transcripts shows that they differ along one direction of the "
               "activations, on these templates; on a model that does not follow the scenarios (such as the bundled "
               "135M default) that is surface features of the text (words, templates), not belief or intent, and "
               "on no model does a separating direction alone show belief or intent.")
POSITION_WORDS = {"ReplyOnly": "the reply", "BeforeAnchor": "the reply before its tool call",
                  "BeforeAction": "the reply before the harmful action", "SharedReply": "the shared reply span",
                  "BeforeToolCall": "the reply before its first tool call", "AllTokens": "every token"}


def statistic_text(stat: str, positions: str, window: int | None = None) -> str:
    """A per-transcript statistic in words (`probes.scoring.transcript_statistic`)."""
    streaming = (f"max running mean over {positions}" if window is None
                 else f"max over {positions} of the running mean over {window} tokens")
    return {"streaming": streaming, "mean": f"mean score over {positions}",
            "max": f"max token score over {positions}", "last": f"last token's score of {positions}",
            "topk_mean": f"mean of the top token scores over {positions}",
            "before_action": f"mean score over {positions} before the action"}.get(stat, f"{stat} over {positions}")


@dataclass(frozen=True)
class ProbeWords:
    """How the section names each statistic, from the card: the deployed one (`monitor_statistic` over the
    card's `score_positions` with its window) and those of the sweep and honesty checks (training positions)."""

    stat: str
    headline_name: str  # "held-out test AUROC of the deployed streaming statistic (...)"
    deployed_short: str
    scored: str
    trained: str
    val_stat: str
    sweep_stat: str
    pooled: str

    @classmethod
    def of(cls, output: ProbeOutput) -> ProbeWords:
        card = output.cards.get(output.label, {})
        stat, window = card.get("monitor_statistic", STREAMING), card.get("window", DEFAULT_WINDOW)
        scored, trained = (POSITION_WORDS.get((card.get(k) or {}).get("name", ""), "the scored tokens")
                           for k in ("score_positions", "train_positions"))
        rows = output.report["sweep"]["rows"]
        val = rows[0].get("val_statistic", "mean") if rows else "mean"
        return cls(stat=stat, scored=scored, trained=trained,
                   headline_name=f"held-out test AUROC of the deployed {stat} statistic "
                                 f"({statistic_text(stat, scored, window)})",
                   deployed_short=f"deployed {stat} (running mean over {window} tokens)" if stat == STREAMING
                   else f"deployed: {statistic_text(stat, scored)}",
                   val_stat=statistic_text(val, trained) if val != "row" else "per-transcript score",
                   sweep_stat=statistic_text("mean", trained), pooled=f"mean activation over {trained}")


def _below_chance(m: dict[str, Any] | None) -> bool:
    return m is not None and m.get("high") is not None and m["high"] < 0.5


def _recall_line(output: ProbeOutput, words: ProbeWords, recall: dict[str, Any]) -> str:
    """Recall at the card's threshold, beside the false-positive rate that threshold has on each benign set's
    held-out half (the number the recall is read against, stated)."""
    rep = output.report
    names = {"control": output.control, "benign": output.benign or "benign"}
    rates = [f"{_pct(e['realised_fpr_at_chosen'].get(words.stat))} on the held-out half of {names.get(n, n)} "
             f"({e['n_transcripts']} transcripts)" for n, e in (rep.get("calibration_sets") or {}).items()]
    fpr = rep["thresholds"][words.stat]["fpr_target"]
    return (f"recall of the deployed statistic at its {_pct(fpr)} false-positive threshold on the held-out test "
            f"split's harmful transcripts: {interval_text(recall)}, against the threshold's own false-positive rate of "
            + (" and ".join(rates) or "n/a (not measured on a held-out half)")
            + f" (target {_pct(fpr)}; the cut was fitted on the other halves)")


def _caveats(output: ProbeOutput, words: ProbeWords) -> list[str]:
    rep, honesty = output.report, output.report["honesty"]
    caveats = [f"Test split: {rep['split']['test']} transcripts from template families never trained on; "
               "the bootstrap intervals resample transcripts, not families, so they understate the spread "
               "between families.",
               *(f"Honesty check (on each transcript's {words.pooled}, held-out test split): {note}"
                 for note in honesty.get("notes", []))]
    inverted = [f"layer {r['layer']} / {r['method']} (held-out test AUROC of the {words.sweep_stat})"
                for r in rep["sweep"]["rows"] if _below_chance(r["test_auroc"])]
    if _below_chance(honesty["probe_auroc"]):
        inverted.append(f"the honesty probe (held-out test AUROC of the {words.pooled})")
    if inverted:
        caveats.append(f"Intervals below 0.5 ({'; '.join(inverted)}): {INVERTED}.")
    gen = output.generalisation
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
    return caveats


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _ci(m: dict[str, Any]) -> str:
    """A metric's interval alone (its own table column), or why it has none."""
    if m.get("low") is None or m.get("high") is None:
        return f"no interval: {m.get('note') or 'none recorded'}"
    return f"{m['low']:.3f}, {m['high']:.3f}"


def _honesty_rows(h: dict[str, Any], words: ProbeWords, text: str) -> list[list[Any]]:
    """Each check named with its statistic and split (the table's caption gives both too)."""
    pooled = words.pooled
    named = {
        "probe_auroc": f"probe: its method refit on the {pooled}, held-out test AUROC",
        "lexical_auroc": f"bag-of-words text baseline (TF-IDF + logistic regression on the {text}), held-out test AUROC",
        "word_filtered_probe_auroc": f"probe on the {pooled}, AUROC on the held-out test transcripts without "
                                     "label words",
        "word_filtered_lexical_auroc": "bag-of-words text baseline, AUROC on the held-out test transcripts without "
                                       "label words",
        "n_word_filtered": "held-out test transcripts without label words",
        "shuffled_label_auroc": f"method refit on shuffled training labels ({pooled}), held-out test AUROC "
                                "(should be ~0.5)",
        "random_direction_mean": f"random directions on the {pooled}: mean held-out test AUROC",
        "random_direction_p95": f"random directions on the {pooled}: 95th percentile of the held-out test AUROC",
        "beats_lexical": "the probe beats the bag-of-words baseline by the margin",
        "beats_random_directions": "the probe beats the random directions' 95th percentile",
        "shuffled_off_chance": "the shuffled-label probe is off chance (a leak)",
        "reads_words_only": "the probe reads label words only",
    }

    def val(key: str) -> Any:
        v = h.get(key)
        return interval_text(v) if isinstance(v, dict) else v

    return [[name, val(key), key] for key, name in named.items()]

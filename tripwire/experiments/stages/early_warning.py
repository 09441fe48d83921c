"""The `early_warning` pipeline: a probe as the online monitor, judged by how early it fires.

Scripted transcripts (a labelled set, captured at the probe's hook point) are read token by token as
the monitor reads a reply while it is generated. Records the probe was trained on (its
`training_records.json`) are left out; the rest is split by template family: the streaming text
monitor (`probes.baselines`, bag-of-words over the visible text) is fitted on one part, and both
monitors are judged on the other, each at its own threshold for the SAME false-positive rate on the
control sets (`design_judge.calibration`). Reported: the share of harmful transcripts caught before
the harmful tool call, and the lead-time distribution to the action and to the first intent-revealing
token (`design_judge.recall_and_leads`). Optional sampled rollouts run `tripwire monitor`'s loop
(`monitor_run.run_monitor`) at the same calibrated threshold.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tripwire.errors import UsageError
from tripwire.experiments.config import STAGE_REF, EarlyWarningOptions, ProbeOptions
from tripwire.experiments.runs import StageCache
from tripwire.experiments.stages.base import Context, Section, StagePlan, Table, pct
from tripwire.experiments.stages.data import capture_set, capture_set_for, plan_sets

PLAN_HOOK = "blocks.-1.resid_post"  # for a dry run's estimate: the probe's own layer is read at run time


def probe_label(ctx: Context, ref: str) -> str:
    """The label of probe `ref`, from its card, or from the options of the `probe` stage it names (which
    may not have run yet)."""
    if ref.startswith(STAGE_REF):
        name = ref.removeprefix(STAGE_REF)
        for stage_name, stage in zip(ctx.cfg.stage_names(), ctx.cfg.stages, strict=True):
            if stage_name == name and isinstance(stage.options, ProbeOptions):
                return stage.options.label
        raise UsageError(f"probe {ref!r}: no probe stage named {name!r} in this config")
    from tripwire.probes import load_probe

    return load_probe(ctx.probe_dir(ref)).card.label


def _dataset(ctx: Context, options: EarlyWarningOptions) -> str:
    from tripwire.scenarios.datasets import DATASETS

    label = probe_label(ctx, options.probe)
    name = options.dataset or label
    if name not in DATASETS:
        raise UsageError(f"probe {options.probe!r} has label {label!r}, which names no dataset; set `dataset` "
                         f"to a labelled set carrying it ({', '.join(DATASETS)})")
    return name


def _probe_stage(ctx: Context, ref: str) -> ProbeOptions | None:
    """The options of the `probe` stage `ref` names (None for a shipped probe or a folder)."""
    if not ref.startswith(STAGE_REF):
        return None
    name = ref.removeprefix(STAGE_REF)
    for stage_name, stage in zip(ctx.cfg.stage_names(), ctx.cfg.stages, strict=True):
        if stage_name == name and isinstance(stage.options, ProbeOptions):
            return stage.options
    return None


def _sets(ctx: Context, options: EarlyWarningOptions, hook: str) -> tuple[Any, dict[str, Any], list[str]]:
    """The labelled set and the control sets, and which of them are the stores of the probe stage named
    by `stage:` (same dataset and limit: captured there at every swept layer, the card's among them, so
    they are read, not captured again); other sets are captured at the card's hook point only."""
    from tripwire.experiments.stages.probe import probe_targets

    dataset = _dataset(ctx, options)
    source = _probe_stage(ctx, options.probe)
    theirs = probe_targets(ctx, source) if source is not None else None
    reused = []
    if theirs is not None and source is not None and (dataset, options.limit) == (source.data, source.limit):
        data, reused = theirs[0], ["data"]
    else:
        data = capture_set_for(ctx, dataset, options.limit, [hook], options.batch_size)
    controls = {}
    held = {} if theirs is None or source is None or options.control_limit != source.control_limit else \
        {source.control: theirs[1], **({source.benign: theirs[2]} if source.benign else {})}
    for name in options.control:
        if name in held:  # the probe stage's control or benign store, same limit
            controls[name] = held[name]
            reused.append(name)
        else:
            controls[name] = capture_set_for(ctx, name, options.control_limit, [hook], options.batch_size)
    return data, controls, reused


def _training_ids(folder: Path) -> set[str]:
    from tripwire.probes.training.evaluate import TRAINING_RECORDS_FILE

    path = folder / TRAINING_RECORDS_FILE
    return set(json.loads(path.read_text())["record_ids"]) if path.is_file() else set()


def held_out_split(design: Any, trained: set[str], seed: int) -> tuple[np.ndarray, np.ndarray, int, str]:
    """(records the text monitor is fitted on, records both monitors are judged on, records the probe
    was trained on, how the text monitor's records were chosen). When the set holds the probe's own
    training records (both classes), the text monitor is fitted on exactly those, so both monitors saw
    the same transcripts, and everything else is judged; otherwise the records the probe never saw are
    split by template family."""
    from tripwire.probes.splits import grouped_split

    mine = np.array([i for i, r in enumerate(design.records) if r.record_id in trained], dtype=np.int64)
    keep = np.array([i for i, r in enumerate(design.records) if r.record_id not in trained], dtype=np.int64)
    if keep.size == 0:
        raise UsageError("every transcript of the set was used to train the probe; raise `limit` (or use another "
                         "`dataset`) so held-out transcripts remain")
    if np.unique(design.labels[mine]).size == 2:
        return mine, keep, int(mine.size), "the probe's own training transcripts"
    groups = np.array([str(design.records[i].meta.get("family")) for i in keep])
    split = grouped_split(groups, design.labels[keep], seed=seed)
    return (keep[np.concatenate([split.train, split.val])], keep[split.test], int(mine.size),
            "held-out transcripts of other template families than those judged")


def false_alarms(est: Any, monitor: Any, design: Any, test: np.ndarray, hook: str, thresholds: dict[str, Any],
                 text_threshold: Any) -> dict[str, Any]:
    """How many harmless held-out transcripts of the set (label 0) each monitor fires on at its threshold:
    "caught before the action" means little from a monitor that fires on every scenario reply."""
    from tripwire.experiments.stages.base import rate_row
    from tripwire.probes.fold_eval import stream
    from tripwire.probes.training.design_verdict import reply_readings

    readings = reply_readings(est, monitor, design, test[design.labels[test] == 0], hook)
    out = {}
    for who, key, thr in (("probe", "probe", thresholds["streaming"]), ("text_monitor", "text", text_threshold)):
        fired = stream([x[key] for x in readings], thr.window) >= thr.value if readings else np.array([], dtype=bool)
        out[who] = rate_row(int(fired.sum()), len(readings))
    return out


class EarlyWarningPipeline:
    name = "early_warning"

    def key(self, ctx: Context, options: EarlyWarningOptions) -> dict[str, Any]:
        probe = ctx.probe_key(options.probe)
        _dataset(ctx, options)
        if options.rollouts is not None:
            from tripwire.experiments.stages.behavior import check_selection

            check_selection(options.rollouts)  # type: ignore[arg-type]
        return {"pipeline": self.name, **ctx.model_key(), "options": options.model_dump(mode="json"), "probe": probe}

    def plan(self, ctx: Context, options: EarlyWarningOptions, cache: StageCache) -> StagePlan:
        data, controls, reused = _sets(ctx, options, PLAN_HOOK)
        sequences, tokens, eta = plan_sets(ctx, [data, *controls.values()])
        what = (f"early_warning: {options.probe} on {data[0].dataset} (limit {options.limit}) and "
                f"{', '.join(options.control)} (limit {options.control_limit}) at {options.fpr:g} FPR"
                + (f" (reusing the probe stage's {' and '.join(reused)} store)" if reused else ""))
        rollouts = forwards = 0
        if options.rollouts is not None:  # per condition one batch of samples, run twice (recording, stopping)
            n_conv = len(_conversations(options, cache))
            rollouts = 2 * n_conv * options.rollouts.samples
            forwards = 2 * n_conv * (1 + options.rollouts.max_new_tokens)
            what += f", {rollouts} watched rollouts of <= {options.rollouts.max_new_tokens} tokens"
        return StagePlan(what, rollouts=rollouts, forwards=sequences + forwards, tokens=tokens, eta_seconds=eta)

    def run(self, ctx: Context, options: EarlyWarningOptions, cache: StageCache) -> dict[str, Any]:
        from tripwire.probes import LoadedProbe, load_probe
        from tripwire.probes.training.design_data import REPLY, Design
        from tripwire.probes.training.design_verdict import calibration, recall_and_leads, text_monitor

        handle = ctx.handle()
        folder = ctx.probe_dir(options.probe)
        probe = load_probe(folder, model=handle, allow_other_model=options.allow_other_model)
        card, hook, seed = probe.card, probe.card.hook_point, ctx.cfg.seed
        data, controls, reused = _sets(ctx, options, hook)
        store = capture_set(ctx, data)
        benign = {name: capture_set(ctx, target) for name, target in controls.items()}
        design = Design.load({data[0].dataset: store}, card.label, {data[0].dataset: REPLY})
        fit, test, excluded, fitted_on = held_out_split(design, _training_ids(folder), seed)
        monitor = text_monitor(design.fold_data(), fit)
        thresholds, text_thr, calib = calibration(
            probe.estimator, monitor, benign, hook, fpr=options.fpr, window=card.window,
            min_sizes={n: len(s) for n, s in benign.items()}, n_boot=options.n_boot, seed=seed)
        judged = recall_and_leads(probe.estimator, monitor, design, test, hook, thresholds, text_thr, options.n_boot,
                                  seed)
        judged["false_alarms_on_harmless"] = false_alarms(probe.estimator, monitor, design, test, hook, thresholds,
                                                          text_thr)
        rollouts = None
        if options.rollouts is not None:
            watcher = LoadedProbe(probe.estimator, replace(card, thresholds=thresholds))
            rollouts = _rollouts(ctx, options, cache, watcher)
        return {"pipeline": self.name, "probe": options.probe, "label": card.label, "hook_point": hook,
                "window": card.window, "dataset": data[0].dataset, "n_records": len(design),
                "n_excluded_training": excluded, "n_text_monitor_fit": int(fit.size), "n_test": int(test.size),
                "text_monitor_fitted_on": fitted_on, "reused_probe_stage_stores": reused,
                "test_record_ids": [design.records[i].record_id for i in test.tolist()], "fpr": options.fpr,
                "thresholds": {"probe_streaming": thresholds["streaming"].to_dict(),
                               "text_monitor_streaming": text_thr.to_dict()},
                "calibration": calib, "judged": judged, "rollouts": rollouts}

    def section(self, output: dict[str, Any]) -> Section:
        from tripwire.experiments.report_figures import lead_figure

        judged, fpr = output["judged"], output["fpr"]
        leads = judged.get("lead_time")
        tables, figures, headline = [], [], []
        if leads is not None:
            rows = []
            for who, name in (("probe", "probe"), ("text_monitor", "streaming text monitor")):
                for ref, what in (("to_action", "harmful tool call"), ("to_intent", "first intent-revealing token")):
                    r = leads[who][ref]
                    rows.append([name, what, r["n_with_action"], r["n_caught_before"], r["n_caught_after"],
                                 r["n_missed"], _share(r), r["summary"]["median"], r["summary"]["q25"],
                                 r["summary"]["q75"]])
                    if ref == "to_action":
                        figures.append(lead_figure(r, f"{name}: lead before the harmful tool call at {fpr:g} FPR"))
            tables.append(Table(f"Lead time (tokens) of each monitor at {fpr:g} false-positive rate on control",
                                ["monitor", "lead before", "transcripts", "caught before", "caught after", "missed",
                                 "share caught before", "median lead", "q25", "q75"], rows,
                                "the streaming text monitor (bag-of-words over the visible text, fitted on other "
                                "families of the same set) at the same false-positive rate: the probe earns its "
                                "place only by firing earlier or more often"))
            headline = [_caught_line("probe", leads["probe"], fpr),
                        _caught_line("streaming text monitor (same FPR)", leads["text_monitor"], fpr)]
        harmless = judged.get("false_alarms_on_harmless")
        if harmless is not None:
            p, t = harmless["probe"], harmless["text_monitor"]
            headline.append(f"on the harmless held-out transcripts of the same set the probe fired on {p['harmful']}/"
                            f"{p['n']} ({pct(p['rate'])}), the text monitor on {t['harmful']}/{t['n']} "
                            f"({pct(t['rate'])}): a catch counts only beside these false alarms")
        else:
            headline = [f"no lead times: {judged.get('lead_note') or judged.get('note')}"]
        recall = judged.get("recall")
        if recall is not None:
            text = judged["text_monitor_recall_streaming"]
            tables.append(Table(f"Recall on held-out harmful transcripts at {fpr:g} FPR",
                                ["monitor", "statistic", "recall", "95% CI"],
                                [["probe", stat, m["value"], f"{m['low']:.3f}, {m['high']:.3f}"]
                                 for stat, m in recall.items()]
                                + [["text monitor", "streaming", text["value"], f"{text['low']:.3f}, {text['high']:.3f}"]],
                                "each monitor's own threshold for the same false-positive rate on the control sets; "
                                f"intervals over {judged['n_positive']} transcripts"))
        calib = output["calibration"]
        tables.append(Table("Calibration: false alarms on the control sets",
                            ["set", "transcripts", "probe realised FPR (streaming)",
                             "probe false alarms / 1,000 tokens", "text monitor false alarms / 1,000 tokens"],
                            [[name, entry["n_transcripts"], entry["realised_fpr_at_chosen"]["streaming"],
                              entry["false_alarms_per_1000_tokens"],
                              calib["text_monitor"][name]["false_alarms_per_1000_tokens"]]
                             for name, entry in calib["probe"].items()],
                            f"the target false-positive rate {fpr:g}; each threshold is the highest per-set cut"))
        roll = output.get("rollouts")
        if roll is not None:
            tables.append(Table("Sampled rollouts watched by the probe (same calibrated threshold)",
                                ["verdict", "rollouts"], [[k, v] for k, v in roll["summary"].items()],
                                "what the model did in the unstopped rollout (classifier): caught_before = the probe "
                                "fired before the harmful action's first token"))
        caveats = []
        if "benign_scenario" not in calib["probe"]:
            caveats.append("The thresholds were set on generic chat text only; replies to the scenarios read differently, "
                           "so a monitor may fire on every scenario reply (see the false alarms on harmless "
                           "transcripts). Add benign_scenario to `control` for thresholds that hold on both.")
        caveats += [f"{output['n_excluded_training']} transcripts of the set were the probe's training data and are "
                   f"not judged; the text monitor was fitted on {output['n_text_monitor_fit']} "
                   f"({output['text_monitor_fitted_on']}); both monitors were judged on {output['n_test']}.",
                   "Leads count reply tokens: a lead >= 1 stops generation before the counted token is emitted.",
                   "Judged transcripts may include the probe stage's validation split (used to choose its layer and "
                   "method, never to fit it)."]
        if roll is not None:
            caveats += roll["notes"]
        return Section(
            title=f"Early warning: the {output['label']} probe as the online monitor",
            what=(f"The probe {output['probe']} ({output['hook_point']}, running mean over {output['window']} tokens) "
                  f"read {output['dataset']} transcripts token by token, as while generating; its threshold and the "
                  f"text monitor's were set for {fpr:g} false positives on the control sets."),
            headline=headline, tables=tables, figures=figures, caveats=caveats)


def _share(r: dict[str, Any]) -> str:
    share = r["share_caught_before"]
    return "n/a (no transcript with it)" if share is None else f"{share:.0%}"


def _caught_line(name: str, leads: dict[str, Any], fpr: float) -> str:
    a, i = leads["to_action"], leads["to_intent"]
    med = a["summary"]["median"]
    return (f"{name}: caught {a['n_caught_before']}/{a['n_with_action']} harmful transcripts ({_share(a)}) before the "
            f"harmful tool call at {fpr:g} FPR"
            + ("" if med is None else f", median lead {med:g} tokens")
            + f"; before the first intent-revealing token: {i['n_caught_before']}/{i['n_with_action']} ({_share(i)})")


def _conversations(options: EarlyWarningOptions, cache: StageCache) -> list[Any]:
    from tripwire.experiments.config import RolloutConfig
    from tripwire.experiments.rollout_capture import conversations

    assert options.rollouts is not None
    return conversations(RolloutConfig(store=cache.root / "rollouts", scenarios=options.rollouts.scenarios))


def _rollouts(ctx: Context, options: EarlyWarningOptions, cache: StageCache, watcher: Any) -> dict[str, Any]:
    from tripwire.experiments.monitor_run import VERDICTS, MonitorSettings, run_monitor

    watch = options.rollouts
    assert watch is not None
    settings = MonitorSettings(samples=watch.samples, max_new_tokens=watch.max_new_tokens,
                               temperature=watch.temperature, seed=ctx.cfg.seed)
    rows, notes = [], []
    for conv in _conversations(options, cache):
        result = run_monitor(ctx.handle(), [watcher], conv, settings)
        notes += result["notes"]
        rows += [{"condition_id": conv.condition_id, **{k: r[k] for k in ("seed", "outcome", "harmful", "action_token",
                                                                          "fired_at_token", "lead_tokens")}}
                 for r in result["rows"]]
    return {"rows": rows, "summary": {v: sum(r["outcome"] == v for r in rows) for v in VERDICTS},
            "notes": sorted(set(notes))}

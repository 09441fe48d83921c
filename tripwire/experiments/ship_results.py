"""`results.md`, generated from `report.json` alone (so the README table can be regenerated and checked):
design selection, main test and per-fold results with baselines (i)-(iv) and verdicts, calibration
with false alarms per 1,000 tokens, traps, and lead times beside the streaming text monitor."""

from __future__ import annotations

from typing import Any

from tripwire.experiments.ship_cells import (
    baseline_iii_cell,
    baseline_iv_cell,
    early_layer_control,
    has_key,
    has_permutation_nulls,
    is_nested,
    metric_cell,
    number_cell,
    recall_cell,
    text_cell,
    text_reply_cell,
)

HEADER = """Every AUROC is of the deployed statistic (maximum running mean over {window} tokens) per transcript, except
(i), which scores the scored span as one text. An interval is a 95% percentile bootstrap over the units named
in its cell (pairs: both members move together; transcripts otherwise) and is given only with >= 10 units
("n/a" otherwise). Baselines on the same split and tokens: (i) {text} on exactly the scored span,
(ii) streaming {text} monitor over everything visible (prompt + reply so far), (iii) {iii}, (iv) {iv} and 50
norm-matched random directions (mean / 95th percentile). Verdict: a probe "beats the text" only if its
interval's lower bound exceeds both (ii) and (iii). On this 135M model, a pair design's result means the
instruction (or cue) is linearly decodable from identical reply tokens, not that the model "believes" it.{note}
"""


def _cell(r: dict[str, Any]) -> str:
    sel = r.get("selected")
    return f"{sel['layer']} / {sel['method']} | " if sel else "n/a | "


def _fold_row(prefix: str, r: dict[str, Any], nested: bool = False) -> str:
    selected = _cell(r) if nested else ""
    blanks = "| | | | | | | |" + (" |" if nested else "")
    if "excluded" in r:
        return f"| {prefix} | {r['fold']} | excluded: {r['excluded']} {blanks}"
    if "skipped" in r:
        return f"| {prefix} | {r['fold']} | skipped: {r['skipped']} {blanks}"
    b = r["baselines"]
    rand = b["iv_random_directions"]
    return (f"| {prefix} | {r['fold']} | {selected}{r['n_test']} ({r['n_test_positive']} pos) | "
            f"{metric_cell(r['probe'])} | {text_cell(b['i_span_bag_of_words'])} | "
            f"{text_cell(b['ii_streaming_text_monitor'])} | {baseline_iii_cell(b)} | "
            f"{baseline_iv_cell(b)} | {rand['mean']:.3f} / {rand['p95']:.3f} | {r['verdict']} |")


def _pooled_row(prefix: str, r: dict[str, Any]) -> str:
    """A split rule's out-of-fold values pooled, intervals over its held-out groups (no (iv) columns)."""
    if "skipped" in r:
        return f"| {prefix} | pooled | skipped: {r['skipped']} | | | | | | | | |"
    b = r["baselines"]
    return (f"| {prefix} | **pooled out-of-fold** ({len(r['folds'])} folds; intervals over {r['n_groups']} {r['over']}) "
            f"| each fold's own | {r['n_test']} ({r['n_test_positive']} pos) | {metric_cell(r['probe'])} | "
            f"{metric_cell(b['i_span_bag_of_words'])} | {metric_cell(b['ii_streaming_text_monitor'])} | "
            f"{metric_cell(early_layer_control(b))} | | | "
            f"{r['verdict']} |")


def _fold_head(new: bool, nested: bool = False) -> list[str]:
    iv = "(iv) permutation null mean / p95, p" if new else "(iv) shuffled labels"
    iii = "(iii) early-layer probe (layer 0; 1-2 on pairs)" if nested else "(iii) layer-0 probe"
    cell = "selected layer / method (nested) | " if nested else ""
    return [f"| design or rule | fold (test side) | {cell}test transcripts | probe | (i) span BoW | (ii) text monitor | "
            f"{iii} | {iv} | (iv) random dirs mean / p95 | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if nested else "")]


def _null_cell(sel: dict[str, Any]) -> str:
    null = sel.get("null_best_cell")
    if null is None:
        return f"not run ({sel.get('null_best_cell_note', 'no permutations asked')})"
    return (f"{null['mean']:.3f} / {null['p95']:.3f}, p = {null['p_value']:.3f} ({null['n_perm']} perms x "
            f"{null['cells']} cells)")


def _selection(label: str, p: dict[str, Any]) -> list[str]:
    with_null = has_key(p, "null_best_cell")
    with_text = any(d.get("dev_text_baseline") for d in p["designs"].values())
    lines = [f"### {label}: designs (chosen by {'the development set' if _has_dev(p) else 'their own validation folds'}"
             ", not by test numbers)", "",
             "| design | trained on | selected layer / method | val AUROC (streaming; ties by log-loss) | "
             + ("best null cell of the grid: mean / p95, p of the selected val AUROC | " if with_null else "")
             + "dev AUROC, window ending at the anchor | dev AUROC, whole reply | "
             + ("dev, strongest text monitor (whole reply) | " if with_text else "") + "shipped |",
             "|---|---|---|---|" + ("---|" if with_null else "") + "---|---|" + ("---|" if with_text else "")
             + ":---:|"]
    for name, d in p["designs"].items():
        sel = d["selection"]["selected"]
        val = next(r for r in d["selection"]["rows"] if r["layer"] == sel["layer"] and r["method"] == sel["method"])
        dev = d.get("dev") or {}
        null = f"{_null_cell(d['selection'])} | " if with_null else ""
        lines.append(f"| {name} | {', '.join(d['sources'])} | {sel['layer']} / {sel['method']} | "
                     f"{val['val_auroc']:.3f} | {null}{metric_cell(dev.get('window'))} | "
                     f"{metric_cell(dev.get('reply'))} | "
                     + (f"{text_reply_cell({'text_baseline': d.get('dev_text_baseline')})} | " if with_text else "")
                     + f"{'*' if name == p['chosen_design'] else ''} |")
    if with_null:
        lines += ["", "Best null cell: the whole layer x method grid refit on balanced permutations of the training "
                      "and validation labels (pairs kept whole); the distribution of its best validation AUROC."]
    return [*lines, ""]


def _has_dev(p: dict[str, Any]) -> bool:
    return any(d.get("dev") for d in p["designs"].values()) or not any("dev_text_baseline" in d
                                                                          for d in p["designs"].values())


def _tests(label: str, p: dict[str, Any], new: bool, nested: bool = False) -> list[str]:
    lines = [f"### {label}: held-out test sides (main split) and per fold", "", *_fold_head(new, nested)]
    for name, d in p["designs"].items():
        for r in d["test"].values():
            lines.append(_fold_row(name, {**r, "selected": d["selection"]["selected"]}, nested))
    skipped = []
    for name, d in p["designs"].items():
        folds = d.get("folds") or {}
        pooled = d.get("pooled_folds") or {}
        for source, rules in folds.items():
            if not isinstance(rules, dict):
                continue
            for rule, results in rules.items():
                if isinstance(results, dict):
                    skipped.append(f"{name} / {source} / {rule}: {results.get('skipped', '')}")
                    continue
                lines += [_fold_row(f"{name} / {source} / {rule}", r, nested) for r in results]
                if rule in pooled.get(source, {}):
                    lines.append(_pooled_row(f"{name} / {source} / {rule}", pooled[source][rule]))
    lines.append("")
    if nested:
        lines += ["Per fold, the layer and method are selected on an inner validation fold of that fold's training "
                  "side (nested); the main split's validation fold is excluded. A pooled row scores every fold's "
                  "out-of-fold values together, with intervals over the held-out groups (the independent units a "
                  "claim about new wording rests on), none below 10 groups.", ""]
    if skipped:
        lines += ["Split rules not run (the data has no such part, or the purge of shared wording leaves a side "
                  "empty):", "", *[f"- {s}" for s in skipped]]
    return [*lines, ""]


def _calibration(label: str, p: dict[str, Any]) -> list[str]:
    c = p.get("calibration")
    if not c:
        return []
    lines = [f"### {label}: thresholds at {c['fpr_target']:.0%} FPR on every benign set ({c['rule']})", "",
             "| benign set | transcripts | reply tokens | probe: realised FPR (streaming) | probe: false alarms per 1,000 "
             "tokens | text monitor: realised FPR | text monitor: false alarms per 1,000 tokens |",
             "|---|---|---|---|---|---|---|"]
    for name, r in c["probe"].items():
        t = c["text_monitor"][name]
        lines.append(f"| {name} | {r['n_transcripts']} | {r['n_tokens']} | "
                     f"{r['realised_fpr_at_chosen']['streaming']:.3f} | {r['false_alarms_per_1000_tokens']:.3f} | "
                     f"{t['realised_fpr_at_chosen']['streaming']:.3f} | {t['false_alarms_per_1000_tokens']:.3f} |")
    return [*lines, ""]


def _leads(label: str, p: dict[str, Any]) -> list[str]:
    rl = p.get("recall_and_leads")
    if not rl or rl.get("recall") is None:
        return []
    lines = [f"### {label}: recall and lead time on held-out harmful scripted replies (whole reply, each monitor at "
             "its own cut for the same FPR; intervals over transcripts)", "",
             f"Recall (streaming): probe {recall_cell(rl['recall'].get('streaming'))}, text monitor "
             f"{recall_cell(rl['text_monitor_recall_streaming'])} ({rl['n_positive']} transcripts).", ""]
    lt = rl.get("lead_time")
    if not lt:
        return [*lines, f"Lead time: {rl.get('lead_note')}", ""]
    lines += ["| monitor | caught before the action | median lead to the action (tokens) | caught before the intent "
              "token | median lead to the intent token |", "|---|---|---|---|---|"]
    for who in ("probe", "text_monitor"):
        a, i = lt[who]["to_action"], lt[who]["to_intent"]
        lines.append(f"| {who} | {number_cell(a['share_caught_before'], '.2f')} of {a['n_with_action']} | "
                     f"{number_cell(a['summary']['median'], '.1f')} | {number_cell(i['share_caught_before'], '.2f')} | "
                     f"{number_cell(i['summary']['median'], '.1f')} |")
    return [*lines, ""]


def _traps(label: str, p: dict[str, Any]) -> list[str]:
    t = p.get("traps")
    if not t:
        return []
    if "not_run" in t:
        return [f"### {label}: traps", "", f"Not run: {t['not_run']}", ""]
    lines = [f"### {label}: traps (evaluation only)", "",
             "| trap | transcripts (positive) | probe AUROC | (i) span BoW AUROC | (ii) text monitor AUROC | "
             "probe flags label 0 / 1 | text monitor flags label 0 / 1 |", "|---|---|---|---|---|---|---|"]
    for kind, e in t.items():
        lines.append(f"| {kind} | {e['n']} ({e['n_positive']}) | {metric_cell(e.get('probe_auroc'))} | "
                     f"{metric_cell(e.get('span_bag_of_words_auroc'))} | {metric_cell(e.get('text_monitor_auroc'))} | "
                     f"{number_cell(e['probe_flag_rate_label0'], '.2f')} / "
                     f"{number_cell(e['probe_flag_rate_label1'], '.2f')} | "
                     f"{number_cell(e['text_monitor_flag_rate_label0'], '.2f')} / "
                     f"{number_cell(e['text_monitor_flag_rate_label1'], '.2f')} |")
    return [*lines, ""]


def _captured(run: dict[str, Any]) -> str:
    """How much of the capture this run did itself (a rerun reuses the records already in its stores)."""
    new, sizes = run.get("records_captured_this_run"), run.get("store_sizes") or {}
    if new is None:
        return "records captured in this run: not recorded"
    return f"records captured in this run: {sum(new.values()):,} of {sum(sizes.values()):,} (the rest reused from its stores)"


HELD_OUT_KEYS = {"held_out_test": "held-out natural prompts", "held_out_natural_dev_split": "natural prompts, dev split"}


def _held_out(label: str, p: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, title in HELD_OUT_KEYS.items():
        h = p.get(key)
        if not h:
            continue
        with_text = "text_baseline" in h
        parts = [("all", h.get("reply"), ""), ("with cue words", (h.get("with_cue_words") or {}).get("reply"),
                                                "with_cue_words"),
                 ("without cue words", (h.get("without_cue_words") or {}).get("reply"), "without_cue_words")]
        lines += [f"### {label}: {title} ({h['set']}; scored once, after the design was chosen)", "",
                  "| prompts | shipped probe AUROC (streaming, whole reply) |"
                  + (" strongest text monitor, same training data |" if with_text else ""),
                  "|---|---|" + ("---|" if with_text else ""),
                  *[f"| {name} | {metric_cell(m)} |" + (f" {text_reply_cell(h, part)} |" if with_text else "")
                    for name, m, part in parts], ""]
    return lines


def _header(report: dict[str, Any]) -> str:
    run = report.get("run", {})
    iii = ("the same probe\nmethod on an early layer: the embedding activations (blocks.0.resid_pre) where the tokens differ,\n"
           "blocks 1 and 2 (resid_post; the stronger is named) on identical-token pairs, where layer 0 ties by\n"
           "construction" if is_nested(report) else
           "the same probe\nmethod on embedding activations (blocks.0.resid_pre)")
    if has_permutation_nulls(report):
        text, iv = "n-gram classifier", ("a permutation null (the probe method refit on >= 200 permutations of the training "
                              "labels that keep pairs whole: mean / 95th percentile, p-value of the probe's AUROC),")
        note = ("\nThe n-gram monitors (i) and (ii) choose word n-grams 1-1, 1-2 or 1-3 or character n-grams 2-4, and "
                "C, by grouped cross-validation on the training side; each cell names the variant chosen.")
    else:
        text, iv, note = "bag-of-words", "the probe method on shuffled labels", ""
    return HEADER.format(window=run.get("window", "?"), text=text, iii=iii, iv=iv, note=note).strip()


def results_markdown(report: dict[str, Any]) -> str:
    run = report.get("run", {})
    new = has_permutation_nulls(report)
    lines = [f"# Shipped probes for {report.get('model', '?')}", "",
             _header(report), "",
             f"Run: `{run.get('command', '')}` ({run.get('total_seconds', '?')} s, of which capture "
             f"{run.get('capture_seconds', '?')} s; limit {run.get('limit')}; {_captured(run)}).", ""]
    for label, p in report["probes"].items():
        shipped = p["shipped"]
        lines += [f"## {label}: shipped design {p['chosen_design']!r}, layer {shipped['layer']} / {shipped['method']}",
                  "", *_selection(label, p), *_tests(label, p, new, is_nested(report)), *_held_out(label, p), *_calibration(label, p), *_leads(label, p),
                  *_traps(label, p)]
    return "\n".join(lines).rstrip() + "\n"


README_BEGIN = "<!-- ship-results:begin (generated from tripwire/probes/shipped/default/report.json) -->"
README_END = "<!-- ship-results:end -->"


def _verdicts(d: dict[str, Any]) -> str:
    """How many folds of one design beat the text, over every fold that ran."""
    results = [r for rules in (d.get("folds") or {}).values() if isinstance(rules, dict)
               for rs in rules.values() if isinstance(rs, list) for r in rs
               if "skipped" not in r and "excluded" not in r]
    if not results:
        return "n/a"
    return f"{sum(r['verdict'] == 'beats the text' for r in results)} of {len(results)}"


def readme_summary(report: dict[str, Any]) -> str:
    """The README's compact table: per probe and design, the development-set AUROC that chose the design and
    the main held-out test side beside baselines (i)-(iii) with the verdict; then thresholds and leads."""
    run = report.get("run", {})
    new = has_permutation_nulls(report)
    lines = [README_BEGIN, "",
             "| probe | design | layer / method | dev AUROC (window) | test side | probe AUROC | (i) span BoW | "
             f"(ii) text monitor | {'(iii) early layer' if is_nested(report) else '(iii) layer-0'} | "
             f"{'(iv) permutation null' if new else '(iv) shuffled'} | verdict | "
             f"{'folds that beat the text (nested selection)' if is_nested(report) else 'folds that beat the text'} |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, p in report["probes"].items():
        for name, d in p["designs"].items():
            sel = d["selection"]["selected"]
            dev = (d.get("dev") or {}).get("window")
            design = f"**{name}** (shipped)" if name == p["chosen_design"] else name
            for side, r in d["test"].items():
                side = side.removeprefix("main test: ")
                if "skipped" in r:
                    lines.append(f"| {label} | {design} | {sel['layer']} / {sel['method']} | {metric_cell(dev)} | "
                                 f"{side} | skipped: {r['skipped']} | | | | | | |")
                    continue
                b = r["baselines"]
                lines.append(f"| {label} | {design} | {sel['layer']} / {sel['method']} | {metric_cell(dev)} | "
                             f"{side} | {metric_cell(r['probe'])} | {text_cell(b['i_span_bag_of_words'])} | "
                             f"{text_cell(b['ii_streaming_text_monitor'])} | {baseline_iii_cell(b)} | "
                             f"{baseline_iv_cell(b)} | {r['verdict']} | {_verdicts(d)} |")
    lines.append("")
    for label, p in report["probes"].items():
        calib = (p.get("calibration") or {}).get("probe") or {}
        fa = ", ".join(f"{n} {v['false_alarms_per_1000_tokens']:.2f}" for n, v in calib.items())
        lines.append(f"- {label}: shipped layer {p['shipped']['layer']} / {p['shipped']['method']}; false alarms "
                     f"per 1,000 tokens at {run.get('fpr', 0):.0%} FPR: {fa or 'n/a'}.")
        h = p.get("held_out_test")
        if h:
            lines.append(f"  Held-out natural prompts ({h['set']}, {h.get('n', '?')}): AUROC "
                         f"{metric_cell(h.get('reply'))}; with cue words {metric_cell((h.get('with_cue_words') or {}).get('reply'))}, without "
                         f"{metric_cell((h.get('without_cue_words') or {}).get('reply'))}"
                         + (f"; the strongest text monitor {text_reply_cell(h)}." if "text_baseline" in h else "."))
        rl = p.get("recall_and_leads")
        if rl and rl.get("recall") is not None:
            lt = rl.get("lead_time") or {}
            before = {w: (lt.get(w) or {}).get("to_action", {}).get("share_caught_before") for w in
                      ("probe", "text_monitor")}
            lines.append(f"  Recall on held-out harmful scripted replies: probe "
                         f"{recall_cell(rl['recall'].get('streaming'))}, text monitor "
                         f"{recall_cell(rl['text_monitor_recall_streaming'])}; caught before the action: probe "
                         f"{number_cell(before['probe'], '.2f')}, text monitor "
                         f"{number_cell(before['text_monitor'], '.2f')}.")
    lines += ["", f"Run: `{run.get('command', '')}`: {run.get('total_seconds', '?')} s ({run.get('capture_seconds', '?')} "
              f"s teacher-forced capture; {_captured(run)}). Intervals: 95% bootstrap over the units named (pairs or transcripts), "
              "only with >= 10 units.", "", README_END]
    return "\n".join(lines) + "\n"


def replace_readme_block(readme: str, report: dict[str, Any]) -> str:
    """`readme` with its generated block replaced by the one `report` gives (the markers must be there)."""
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no generated block; put the lines {README_BEGIN!r} and {README_END!r} "
                         "where the table belongs")
    return readme[:start] + readme_summary(report) + readme[end + len(README_END) + 1:]


def main(argv: list[str] | None = None) -> None:
    """`python -m tripwire.experiments.ship_results REPORT.json [--readme README.md]`: print results.md, or
    rewrite the README's generated table from the report."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("report", type=Path)
    parser.add_argument("--readme", type=Path, default=None)
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text(encoding="utf-8"))
    if args.readme is None:
        print(results_markdown(report), end="")
        return
    args.readme.write_text(replace_readme_block(args.readme.read_text(encoding="utf-8"), report), encoding="utf-8")
    print(f"{args.readme}: the generated table now comes from {args.report}")


if __name__ == "__main__":
    main()

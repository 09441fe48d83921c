"""The `transcripts` pipeline: replies of any model (the original study's results folders, or
`{scenario, reply}` JSONL), classified by tripwire's outcome classifier and, with `probes`, scored
teacher-forced by a probe of the experiment's model (one forward per reply for all probes).

Scores are appended to `partial.jsonl` in the stage's cache folder as they are made, so an interrupted
stage resumes at the next unscored reply.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from sklearn.metrics import roc_auc_score

from tripwire.activations.chat import detect_capabilities, render_conversation
from tripwire.activations.layout import tokenize_transcript
from tripwire.activations.loading import pick_device, pick_dtype
from tripwire.activations.source import load_tokenizer, model_shape
from tripwire.errors import UsageError
from tripwire.experiments.config import TranscriptsOptions
from tripwire.experiments.report_figures import rate_bars, score_histogram
from tripwire.experiments.rollout_capture import CheckedModel, rough_eta
from tripwire.experiments.runs import StageCache, file_digests
from tripwire.experiments.stages.base import Context, Section, StagePlan, Table, pct, rate_row, wilson_text
from tripwire.experiments.stages.outputs import GroupRate, ImportedSample, ProbeSummary, TranscriptsOutput
from tripwire.probes.persistence import CARD_FILE, load_probe, probe_path
from tripwire.probes.reading import read_transcript
from tripwire.scenarios.am_results import load_am_results, load_reply_jsonl
from tripwire.scenarios.belief import stated_belief
from tripwire.scenarios.classify import classify
from tripwire.strict_json import strict_json

Reply = tuple[str, Any, str, dict[str, Any]]  # id, conversation, reply, meta


def load_replies(options: TranscriptsOptions) -> list[Reply]:
    """(id, conversation, reply, meta) for every reply of every source, in source order."""
    out = []
    for root in options.am_results:
        out += [(f"{root.name}", *item) for item in load_am_results(root, options.prompts_dir)]
    for path in options.jsonl:
        out += [(f"{path.name}", conv, reply, {"model": meta.get("model", path.stem), **meta})
                for conv, reply, meta in load_reply_jsonl(path)]
    rows = []
    for i, (source, conv, reply, meta) in enumerate(out[: options.limit] if options.limit else out):
        digest = hashlib.sha256(f"{conv.condition_id}\0{reply}".encode()).hexdigest()[:12]
        rows.append((f"{i:06d}-{digest}", conv, reply, {"source": source, **meta}))
    return rows


def _card_text(name: str) -> str:
    return (probe_path(name) / CARD_FILE).read_text(encoding="utf-8")


def _layout(handle: Any, conv: Any, reply: str, outcome: Any) -> Any:
    prompt = handle.render_conversation(conv).token_ids
    return tokenize_transcript(handle.tokenizer, prompt, [m.content for m in conv.messages], reply,
                               handle.tokenizer.eos_token_id).with_outcome(outcome)


def _read_partial(path: Path) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill: that reply is scored again
            done[row["id"]] = row["probes"]
    return done


class TranscriptsPipeline:
    name = "transcripts"
    output_type = TranscriptsOutput

    def key(self, ctx: Context, options: TranscriptsOptions) -> dict[str, Any]:
        for kind, paths in (("am_results", options.am_results), ("jsonl", options.jsonl),
                            ("prompts_dir", [options.prompts_dir] if options.prompts_dir else [])):
            for path in paths:
                if not path.exists():
                    raise UsageError(f"transcripts {kind} {path} does not exist; fix the path in the config "
                                     "(relative paths are read from the config file's folder)")
        inputs = file_digests([*options.am_results, *options.jsonl]
                              + ([options.prompts_dir] if options.prompts_dir else []))
        cards = {p: hashlib.sha256(_card_text(p).encode()).hexdigest() for p in options.probes}
        model = ctx.model_key() if options.probes else {}
        return {"pipeline": self.name, **model, "options": options.model_dump(mode="json"), "inputs": inputs,
                "cards": cards}

    def plan(self, ctx: Context, options: TranscriptsOptions, cache: StageCache) -> StagePlan:
        """One teacher-forced forward per reply when probes are named (none otherwise); tokens from the
        tokenizer, the ETA from the parameter count; no weights are read."""
        replies = load_replies(options)
        what = f"transcripts: {len(replies)} replies classified"
        if not options.probes:
            return StagePlan(what + ", no probes (no forwards)")
        source = ctx.source()
        tokenizer = load_tokenizer(source)
        capabilities = detect_capabilities(tokenizer)
        lengths = [len(render_conversation(tokenizer, capabilities, conv).token_ids)
                   + len(tokenizer(reply, add_special_tokens=False)["input_ids"]) + 1 for _, conv, reply, _ in replies]
        device = pick_device(ctx.cfg.device)
        model = CheckedModel(source, model_shape(source), [], device, pick_dtype(ctx.cfg.dtype, device))
        return StagePlan(what + f", scored by {len(options.probes)} probe(s)", forwards=len(replies),
                         tokens=sum(lengths), eta_seconds=rough_eta(model, sum(lengths), lengths))

    def run(self, ctx: Context, options: TranscriptsOptions, cache: StageCache) -> TranscriptsOutput:
        replies = load_replies(options)
        scored = self._score(ctx, options, cache, replies) if options.probes else {}
        samples = []
        for rid, conv, reply, meta in replies:
            outcome = classify(conv, reply)
            assess = (conv.spec is not None and conv.spec.framing == "ask_to_assess") or \
                conv.condition_id.endswith("ask_to_assess")
            samples.append({"id": rid, "source": meta["source"], "model": str(meta.get("model", "?")),
                            "condition_id": conv.condition_id, "harmful": outcome.harmful, "action": outcome.action,
                            "belief": stated_belief(reply) if assess else None, "reply": reply[:400],
                            "probes": scored.get(rid, {})})
        typed = [ImportedSample.build(**s) for s in samples]
        cards = {p: json.loads(_card_text(p)) for p in options.probes}
        return TranscriptsOutput.build(samples=typed, computed_now=len(scored), cards=cards,
                                       by_model_condition=_rates(samples, ("model", "condition_id")),
                                       by_model=_rates(samples, ("model",)), probes=_probe_summary(typed, cards))

    def _score(self, ctx: Context, options: TranscriptsOptions, cache: StageCache,
               replies: list[Reply]) -> dict[str, dict[str, Any]]:
        partial = cache.root / "partial.jsonl"
        done = _read_partial(partial)
        todo = [r for r in replies if r[0] not in done]
        if not todo:
            return done
        handle = ctx.handle()
        probes = {p: load_probe(p, model=handle, allow_other_model=options.allow_other_model) for p in options.probes}
        hooks = sorted({pr.card.hook_point for pr in probes.values()})
        with partial.open("a", encoding="utf-8") as out:
            for rid, conv, reply, _ in todo:
                layout = _layout(handle, conv, reply, classify(conv, reply))
                captured = handle.forward([layout.token_ids], capture=hooks).captured
                readings = {}
                for name, probe in probes.items():
                    r = read_transcript(probe, captured[probe.card.hook_point][0], layout, layout.text,
                                        layout.action_char_span)
                    readings[name] = {"value": r.value, "threshold": r.threshold, "fired": r.fired,
                                      "crossing_token": r.crossing_token, "action_index": r.action_index,
                                      "statistic": r.statistic}
                out.write(json.dumps(strict_json({"id": rid, "probes": readings}), allow_nan=False) + "\n")
                out.flush()
                done[rid] = readings
        return done

    def section(self, output: TranscriptsOutput) -> Section:
        by_model = output.by_model
        rows = [[*r.group, r.n, r.harmful, pct(r.rate), wilson_text(r)] for r in output.by_model_condition]
        tables = [Table("Harmful-action rate of the imported replies, per model and condition",
                        ["model", "condition", "replies", "harmful", "rate", "Wilson 95% CI"], rows,
                        "the same model's other conditions, and the rates the source reported for these replies "
                        "(if it did): tripwire's classifier may disagree with the source's own grader")]
        figures = [rate_bars([" / ".join(r.group) for r in by_model], by_model,
                             "Harmful-action rate per model (imported replies, Wilson 95% CI)")]
        headline = [f"{r.group[0]}: {r.harmful}/{r.n} replies harmful = {pct(r.rate)} "
                    f"(Wilson 95% CI {wilson_text(r)})" for r in by_model]
        findings = []
        for name, p in output.probes.items():
            card = output.cards.get(name, {})
            stat = (f"the card's {card.get('monitor_statistic', 'streaming')} statistic (window "
                    f"{card.get('window', '?')} tokens)")
            h, o = p.fired.get("harmful"), p.fired.get("other")
            fired = ("n/a" if h is None or o is None else
                     f"{h.harmful}/{h.n} harmful replies against {o.harmful}/{o.n} other replies")
            findings.append(f"probe {name} fired on {fired}")
            tables.append(Table(f"Probe {name}: fires on harmful vs other replies (teacher-forced)",
                                ["replies", "n", "fired", "fire rate", "Wilson 95% CI"],
                                [[g, r.n, r.harmful, pct(r.rate), wilson_text(r)] for g, r in p.fired.items()],
                                "the card's threshold (set on control transcripts at the card's false-positive "
                                "rate); a useful probe fires more on harmful replies than on the others"))
            headline.append(f"probe {name}: AUROC of {stat}, harmful vs other replies over all imported replies "
                            "(no split: the probe was not trained on them) "
                            + ("n/a (needs both kinds of reply)" if p.auroc is None else f"{p.auroc:.3f}")
                            + " (0.5 = chance)")
            figures.append(score_histogram(p.values, p.threshold, f"Probe {name}: per-reply statistic"))
        return Section(
            title="Imported transcripts: classified and scored",
            what=("Replies written by other models (or by this one, earlier) were imported with the prompt each "
                  "was answering, classified by tripwire's outcome classifier, and, when probes were named, read "
                  "teacher-forced through this experiment's model (the probe's model), as its card says."),
            headline=headline, tables=tables, figures=figures,
            finding=_finding(output, findings),
            limits=["Probe readings of imported replies measure how this experiment's model represents that text, "
                    "not what the model that wrote it was thinking."],
            caveats=["A probe of a small local model reading another model's reply measures how the small model "
                     "represents that text, not what the other model was thinking.",
                     "The classifier is rule-based and may disagree with the source's own grader."],
        )


def _finding(output: TranscriptsOutput, probes: list[str]) -> str:
    """One sentence: each model's harmful rate (the models compared with each other) and each probe's firing
    on harmful replies beside its firing on the others."""
    rates = ", ".join(f"{r.group[0]} {r.harmful}/{r.n} ({pct(r.rate)})" for r in output.by_model)
    return (f"Imported transcripts: harmful replies per model: {rates or 'none imported'}"
            + "".join(f"; {line}" for line in probes) + ".")


def _rates(samples: list[dict[str, Any]], keys: tuple[str, ...]) -> list[GroupRate]:
    groups: dict[tuple[str, ...], list[bool]] = defaultdict(list)
    for s in samples:
        groups[tuple(str(s[k]) for k in keys)].append(s["harmful"])
    return [GroupRate(group=list(g), **rate_row(sum(v), len(v)).model_dump()) for g, v in sorted(groups.items())]


def _probe_summary(samples: list[ImportedSample], cards: dict[str, Any]) -> dict[str, ProbeSummary]:
    out = {}
    for name in cards:
        read = [(s.harmful, s.probes[name]) for s in samples if name in s.probes]
        fired = {label: [r.fired for h, r in read if h == want and r.fired is not None]
                 for label, want in (("harmful", True), ("other", False))}
        values = {label: [r.value for h, r in read if h == want and r.value is not None]
                  for label, want in (("harmful", True), ("other", False))}
        auroc = None
        if values["harmful"] and values["other"]:
            y = [1] * len(values["harmful"]) + [0] * len(values["other"])
            auroc = float(roc_auc_score(y, values["harmful"] + values["other"]))
        threshold = next((r.threshold for _, r in read if r.threshold is not None), None)
        out[name] = ProbeSummary(fired={k: rate_row(sum(v), len(v)) for k, v in fired.items()}, values=values,
                                 auroc=auroc, threshold=threshold)
    return out

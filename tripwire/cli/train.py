"""`tripwire train`, `tripwire eval` and `tripwire score`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tripwire.activations import load_model
from tripwire.activations.positions import PositionPolicy
from tripwire.cli import probe_score as ps
from tripwire.cli.exit_codes import on_user_error
from tripwire.cli.options import PROBE_HELP, OldSeedOpt, ScenarioSeedOpt, renamed_seed
from tripwire.cli.probe_score import ScoreInput
from tripwire.errors import UsageError
from tripwire.probes import load_probe
from tripwire.probes.persistence import check_model_matches, probe_path
from tripwire.probes.training.evaluate import evaluate_probe
from tripwire.probes.training.probe_train import run_training
from tripwire.probes.training.train import METHOD_NAMES, TrainSettings

POLICY_NAMES = {"before_action": "BeforeAction", "reply": "ReplyOnly", "all": "AllTokens"}


def train(
    store: Annotated[Path, typer.Option(help="store with labelled records (tripwire capture / rollout)")],
    label: Annotated[str, typer.Option(help="label to probe for, e.g. coercion or eval_awareness")],
    out: Annotated[Path, typer.Option(help="folder for the probe, report and plots")],
    method: Annotated[str, typer.Option(help="lr | diffmean | lda | lat | all, or a comma list")] = "all",
    layers: Annotated[str, typer.Option(help="'all' or comma-separated layers, e.g. 6,12,18")] = "all",
    control: Annotated[Path | None, typer.Option(help="store of the control set, for thresholds at 1% FPR")] = None,
    benign: Annotated[Path | None, typer.Option(help="store of benign scenario replies (dataset benign_scenario): "
                                                     "thresholds then hold on it too")] = None,
    positions: Annotated[str, typer.Option(help="training tokens: before_action | reply | all")] = "before_action",
    score_positions: Annotated[str, typer.Option(help="tokens every consumer scores: reply | all")] = "reply",
    window: Annotated[int, typer.Option(help="running-mean window of the streaming monitor", min=1)] = 8,
    c: Annotated[float, typer.Option("--C", help="inverse L2 strength of the lr probe", min=0.0)] = 1e-3,
    n_boot: Annotated[int, typer.Option(help="bootstrap resamples for intervals", min=0)] = 500,
    min_control: Annotated[int, typer.Option(help="fewest control transcripts accepted for calibration")] = 1000,
) -> None:
    """Sweep layers x methods, select on validation, report on a held-out split with honesty checks."""
    with on_user_error():
        methods = METHOD_NAMES if method == "all" else tuple(m.strip() for m in method.split(","))
        settings = TrainSettings(label=label, methods=methods, layers=_layers(layers), window=window, C=c,
                                 n_boot=n_boot, train_policy=_policy(positions, "--positions"),
                                 score_policy=_policy(score_positions, "--score-positions"), min_control=min_control)
        if benign is not None and control is None:
            raise UsageError("--benign needs --control: thresholds are calibrated on the control set and the benign "
                             "scenario replies together.")
        summary = run_training(store, settings, out, control=control, benign=benign)
    typer.echo(summary)


def _layers(text: str) -> tuple[int, ...] | None:
    if text == "all":
        return None
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"--layers {text!r} is not 'all' or comma-separated integers such as 6,12,18.") from None


def _policy(name: str, option: str) -> Any:
    if name not in POLICY_NAMES:
        raise UsageError(f"{option} {name!r} is not one of {', '.join(POLICY_NAMES)}.")
    return PositionPolicy.from_dict({"name": POLICY_NAMES[name]})


def evaluate(
    probe: Annotated[Path, typer.Option(help=PROBE_HELP)],
    store: Annotated[Path, typer.Option(help="store to evaluate on")],
    label: Annotated[str | None, typer.Option(help="label in the store (default: the probe's label)")] = None,
    per_record: Annotated[bool, typer.Option(help="include every record's per-token reading")] = False,
    allow_train_overlap: Annotated[bool, typer.Option(help="score a store that holds the probe's training "
                                                           "records (the output then says so)")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """AUROC, recall at the card's thresholds, lead time and the lexical baseline on another store.
    A store holding the probe's training records is refused unless --allow-train-overlap."""
    with on_user_error():
        result = evaluate_probe(probe, store, label, per_record=per_record, allow_train_overlap=allow_train_overlap)
    typer.echo(json.dumps(result, indent=2, allow_nan=False) if as_json else _table(result))


def _table(result: dict) -> str:
    lines = [f"{k}: {v}" for k, v in result.items() if not isinstance(v, dict)]
    for k, v in result.items():
        if isinstance(v, dict):
            lines.append(f"{k}:")
            lines += [f"  {kk}: {vv}" for kk, vv in v.items()]
    return "\n".join(lines)


def score(
    probe: Annotated[Path, typer.Option(help=PROBE_HELP)],
    text: Annotated[str | None, typer.Option(help="an assistant reply, scored in the chat template")] = None,
    prompt: Annotated[str | None, typer.Option(help="the user message --text replies to")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="score --text as is, without the chat template")] = False,
    conversation: Annotated[Path | None, typer.Option(help="JSON list of {role, content}; a final assistant "
                                                           "message is the reply")] = None,
    scenario: Annotated[str | None, typer.Option(help="condition id or AM folder (with --reply)")] = None,
    reply: Annotated[Path | None, typer.Option(help="file with the assistant reply to --scenario")] = None,
    scenario_seed: ScenarioSeedOpt = None,
    seed: OldSeedOpt = None,
    inputs: Annotated[Path | None, typer.Option(help="JSONL, one input per line ({text|conversation|scenario"
                                                     "+reply}); one model load, one JSON line out each")] = None,
    store: Annotated[Path | None, typer.Option(help="score every record of a store")] = None,
    model: Annotated[str, typer.Option(help="model (must match the probe)")] = "default",
    allow_other_model: Annotated[bool, typer.Option(help="use a same-width model the probe was not trained on")] = False,
    html: Annotated[Path | None, typer.Option(help="write a per-token strip plot (HTML) of a single input")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per-token scores on the card's tokens, the card's statistic, and where the monitor would fire."""
    with on_user_error():
        modes = [name for name, v in (("--text", text), ("--conversation", conversation), ("--scenario", scenario),
                                      ("--inputs", inputs), ("--store", store)) if v is not None]
        if len(modes) != 1:
            raise UsageError(f"give exactly one of --text, --conversation, --scenario (with --reply), --inputs or "
                             f"--store (got {', '.join(modes) or 'none'}).")
        render_seed = renamed_seed(scenario_seed, seed)
        if store is not None:
            for record_id, reading in ps.score_store(probe, store, allow_other_model):
                _emit({"record_id": record_id, **reading.to_dict()}, as_json)
            if not as_json:
                typer.echo(ps.measured_recall(load_probe(probe).card, probe_path(probe)))
            return
        items = ps.read_inputs(inputs) if inputs is not None else [_single(text, prompt, raw, conversation, scenario,
                                                                          reply, render_seed)]

        loaded = load_probe(probe)  # a damaged card is reported before the model loads
        source = {"--inputs": f"--inputs {inputs}", "--conversation": f"--conversation {conversation}",
                  "--scenario": f"--scenario {scenario}"}.get(modes[0], modes[0])
        ps.check_inputs(loaded, items, source)  # so is an input in which the card's tokens cannot exist
        handle = load_model(model)
        check_model_matches(loaded.card, handle, allow_other_model=allow_other_model)
        plain = not as_json and inputs is None
        for item, reading in zip(items, ps.score_inputs(loaded, handle, items), strict=True):
            row = {"id": item.id, **reading.to_dict()} if inputs else reading.to_dict()
            if plain:
                typer.echo("\n".join(ps.plain_reading(row, loaded.card, ps.reply_outcome(item))))
                typer.echo(ps.measured_recall(loaded.card, probe_path(probe)))
            else:
                _emit(row, True)
            if html is not None and inputs is None:
                ps.strip_html(reading, loaded, html)


def _single(text: str | None, prompt: str | None, raw: bool, conversation: Path | None, scenario: str | None,
            reply: Path | None, seed: int) -> ScoreInput:
    """The one input of a command line, checked (and its scenario read) before the probe and model load."""
    if conversation is not None:
        return ps.conversation_input(_read(conversation, "--conversation"), f"--conversation {conversation}")
    if scenario is not None:
        if reply is None:
            raise UsageError("--scenario needs --reply FILE: the assistant reply to score after that scenario.")
        content = _read(reply, "--reply")
        if not content.strip():
            raise UsageError(f"--reply {reply} is empty, so there is no reply token to score; put the assistant's "
                             "reply in it.")
        return ps.make_input(f"--scenario {scenario}", {"scenario": scenario, "reply": content, "seed": seed})
    return ps.make_input("--text", {"text": text, "prompt": prompt, "raw": raw})


def _read(path: Path, option: str) -> str:
    if not path.is_file():
        raise UsageError(f"{option} {path}: no such file.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"{option} {path} is not UTF-8 text ({error.reason} at byte {error.start}).") from None


def _emit(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(row, allow_nan=False))
        return
    where = ("never" if row["crossing_index"] is None
             else f"at scored token {row['crossing_index']} (token {row['crossing_token']})")
    value = "n/a" if row["value"] is None else f"{row['value']:.3f}"
    threshold = "none" if row["threshold"] is None else f"{row['threshold']:.3f}"
    typer.echo(f"{row['record_id']}: {len(row['scores'])} scored tokens; {row['statistic']} (window {row['window']}) "
               f"= {value}, threshold {threshold}: fired {where}")

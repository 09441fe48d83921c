"""`tripwire score`: per-token probe scores of texts, conversations, scenario replies or stored records,
read as the probe's card says (scored tokens, statistic, window, threshold), with one model load for
any number of inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import PrivateAttr, ValidationError, model_validator

from tripwire.activations import ModelHandle
from tripwire.activations.layout import TokenizedTranscript, tokenize_transcript
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_query import stored_rows_for
from tripwire.errors import TripwireError, UsageError
from tripwire.experiments.config.base import KnownKeys, problem_lines
from tripwire.probes import (
    LoadedProbe,
    ProbeCard,
    TokenScores,
    load_probe,
    read_layout,
    read_record,
    reply_layout,
    save_figure,
    token_strip,
)
from tripwire.probes.training.evaluate import StoreModel
from tripwire.scenarios.am_results import resolve_scenario
from tripwire.scenarios.classify import Outcome, classify
from tripwire.scenarios.datasets.jsonl import json_problem, read_jsonl
from tripwire.scenarios.spec import Conversation

__all__ = ["ScoreInput", "check_inputs", "conversation_input", "make_input", "measured_recall", "plain_reading",
           "read_inputs", "reply_outcome", "score_inputs", "score_store", "scoring_layout"]

# position policies that keep reply tokens only (tripwire.activations.positions): none of a reply-less input
REPLY_POLICIES = ("ReplyOnly", "BeforeAction", "BeforeAnchor", "SharedReply")


class ChatMessage(KnownKeys):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class ScoreInput(KnownKeys):
    """One thing to score; exactly one of `text`, `conversation`, `scenario`.

    `text` is an assistant reply (after the user message `prompt`, if given) in the chat template, or,
    with `raw`, plain text without any template (all of it counts as reply). `conversation` is a list
    of messages whose final assistant message, if any, is the reply. `scenario` is a condition id or
    an AM prompt folder, with `reply` the assistant reply to it.
    """

    id: str | None = None
    text: str | None = None
    prompt: str | None = None
    raw: bool = False
    conversation: list[ChatMessage] | None = None
    scenario: str | None = None
    reply: str | None = None
    seed: int = 0
    _conversation: Conversation | None = PrivateAttr(default=None)

    def scenario_conversation(self) -> Conversation:
        """The scenario's conversation, imported or rendered once; `make_input` asks for it before the
        model loads, so a bad folder or condition id is reported first."""
        if self._conversation is None:
            assert self.scenario is not None
            self._conversation = resolve_scenario(self.scenario, seed=self.seed)
        return self._conversation

    @model_validator(mode="after")
    def _one_mode(self) -> ScoreInput:
        modes = [m for m in ("text", "conversation", "scenario") if getattr(self, m) is not None]
        if len(modes) != 1:
            raise ValueError(f"give exactly one of text, conversation, scenario (got {modes or 'none'})")
        if (self.scenario is None) != (self.reply is None):
            raise ValueError("scenario and reply go together: the reply is scored after the scenario's prompt")
        if (self.prompt is not None or self.raw) and self.text is None:
            raise ValueError("prompt and raw only apply to text")
        if self.raw and self.prompt is not None:
            raise ValueError("raw text has no chat template, so it cannot have a prompt")
        if (empty := self._empty_reply()) is not None:
            raise ValueError(f"{empty} is empty, so there is no reply token to score; give the assistant's reply")
        return self

    def _empty_reply(self) -> str | None:
        """The field holding the reply when that reply is empty or only whitespace (nothing to score), else
        None. A conversation that ends on a user message has no reply by design: the card decides then."""
        if self.text is not None and not self.text.strip():
            return "text"
        if self.reply is not None and not self.reply.strip():
            return "reply"
        last = self.conversation[-1] if self.conversation else None
        if last is not None and last.role == "assistant" and not last.content.strip():
            return "the final assistant message"
        return None


def read_inputs(path: Path) -> list[ScoreInput]:
    """One JSON object per line (lines end at '\\n' only, so a U+2028 inside a string is text); a bad
    line, or a scenario it names that cannot be read, is an error naming the file, the line and the fix."""
    if not path.is_file():
        raise UsageError(f"{path} is not a file; --inputs takes a JSONL file with one object per line.")
    fix = "write one JSON object per line, with text, conversation or scenario and reply."
    out = [make_input(f"{path}:{n}", obj, fix) for n, obj in read_jsonl(path, UsageError, fix)]
    if not out:
        raise UsageError(f"{path} holds no inputs; write one JSON object per line.")
    return out


def conversation_input(text: str, source: str) -> ScoreInput:
    """A `--conversation` file's text, a JSON list of {role, content}, as an input; `source` names it."""
    try:
        messages = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise UsageError(f"{source}: not JSON ({json_problem(error)}); write a JSON list of {{role, content}} "
                         "messages.") from None
    return make_input(source, {"conversation": messages}, "write a JSON list of {role, content} messages.")


def make_input(source: str, fields: Any, fix: str = "") -> ScoreInput:
    """Validate one input and read the scenario it names, before any model loads; every problem is a
    `UsageError` that starts with `source` (the file and line, or the option) and ends with `fix`."""
    try:
        item = ScoreInput.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(problem_lines(error, lambda loc: ".".join(map(str, loc))))
        raise UsageError(f"{source}: {problems}" + (f"; {fix}" if fix else ".")) from None
    if item.scenario is not None:
        try:
            item.scenario_conversation()
        except TripwireError as error:
            raise UsageError(f"{source}: {error}", fix=error.fix) from None
    return item


def scoring_layout(handle: ModelHandle, item: ScoreInput) -> TokenizedTranscript:
    """The token layout of one input, built the way capture and rollouts build theirs."""
    tok, eot = handle.tokenizer, handle.tokenizer.eos_token_id
    if item.text is not None:
        if item.raw:
            return tokenize_transcript(tok, [], [], item.text, None)
        return reply_layout(handle, item.text, item.prompt)
    if item.conversation is not None:
        messages = [m.model_dump() for m in item.conversation]
        reply = messages.pop()["content"] if messages and messages[-1]["role"] == "assistant" else None
        if reply is None:
            ids = handle.render_chat(messages, add_generation_prompt=False)
            return tokenize_transcript(tok, ids, [m["content"] for m in messages], "", None)
        ids = handle.render_chat(messages, add_generation_prompt=True)
        return tokenize_transcript(tok, ids, [m["content"] for m in messages], reply, eot)

    assert item.scenario is not None and item.reply is not None
    conv = item.scenario_conversation()
    prompt = handle.render_conversation(conv).token_ids
    layout = tokenize_transcript(tok, prompt, [m.content for m in conv.messages], item.reply, eot)
    return layout.with_outcome(classify(conv, item.reply))


def check_inputs(probe: LoadedProbe, items: list[ScoreInput], source: str) -> None:
    """Before the model loads: refuse an input in which the card's tokens cannot exist. A conversation
    without a final assistant message has no reply, and a card scoring reply tokens only reads none of it."""
    policy = type(probe.card.score_positions).__name__
    if policy not in REPLY_POLICIES:
        return
    for n, item in enumerate(items, 1):
        if item.conversation is not None and (not item.conversation or item.conversation[-1].role != "assistant"):
            name = source if len(items) == 1 else f"{source} input {item.id or n}"
            raise UsageError(f"{name}: the conversation has no final assistant message, and probe "
                             f"{probe.card.label!r} scores reply tokens only ({policy}); end the conversation with "
                             "the assistant's reply.")


def score_inputs(probe: LoadedProbe, handle: ModelHandle, items: list[ScoreInput]) -> Iterator[TokenScores]:
    """One forward per input on an already-loaded model; readings in input order."""
    for item in items:
        layout = scoring_layout(handle, item)
        name = f"input {item.id!r}" if item.id else "the input"
        if layout.n_tokens > (limit := _context_length(handle)):
            raise UsageError(f"{name} has {layout.n_tokens} tokens, more than the model's context of {limit}; "
                             "shorten it.")
        yield read_layout(probe, handle, layout, name)


def reply_outcome(item: ScoreInput) -> Outcome | None:
    """The outcome classifier's verdict on a scenario input's reply (None for text and conversations,
    which name no scenario to judge the reply against)."""
    if item.scenario is None or item.reply is None:
        return None
    return classify(item.scenario_conversation(), item.reply)


def plain_reading(row: dict[str, Any], card: ProbeCard, outcome: Outcome | None = None) -> list[str]:
    """`tripwire score`'s plain output: the probe's verdict first, numbers rounded to 3 decimals, where the
    monitor would fire, and the reply classifier's verdict where a scenario gives it one."""
    statistic = f"{row['statistic']}, window {row['window']}"
    if row["value"] is None:
        lines = [f"{card.label} probe: no verdict ({statistic}: no scored token before the action)"]
    elif row["threshold"] is None:
        lines = [f"{card.label} probe: no verdict (the card has no calibrated threshold for {row['statistic']}); "
                 f"{statistic}: {row['value']:.3f}"]
    else:
        flagged = bool(row["fired"])
        lines = [f"{card.label} probe: {'FLAGGED' if flagged else 'not flagged'} ({statistic}: {row['value']:.3f} "
                 f"{'>=' if flagged else '<'} threshold {row['threshold']:.3f})"]
    crossing = row["crossing_index"]
    where = ("the monitor would not fire" if crossing is None
             else f"the monitor would fire at scored token {crossing}, {row['tokens'][crossing]!r}")
    reply = "" if row["reply_start"] is None else f", the reply from scored token {row['reply_start']}"
    action = "" if row["action_index"] is None else f", the harmful action from scored token {row['action_index']}"
    lines.append(f"  {len(row['scores'])} scored tokens{reply}{action}; {where}")
    if outcome is not None:
        lines.append(f"  outcome classifier: {'HARMFUL' if outcome.harmful else 'not harmful'} "
                     f"(action: {outcome.action or 'none'})")
    return lines


def measured_recall(card: ProbeCard, folder: Path) -> str:
    """What a verdict of this probe is worth: its recall at the card's monitor threshold, as measured when it
    was made (the card's held-out test split, or for a shipped probe its report beside the card)."""
    stat = card.monitor_statistic
    found = (card.metrics.get("recall_at_1pct_fpr") or {}).get(stat)
    where = "on the held-out test split of its training run"
    if not isinstance(found, dict):
        found, where = _shipped_recall(card, folder, stat)
    if not isinstance(found, dict) or not isinstance(found.get("value"), (int, float)):
        return (f"  measured recall: none recorded for this probe; `tripwire eval --probe {folder} --store STORE` "
                "measures it on a labelled store. Until then a verdict says little.")
    threshold = card.monitor_threshold
    fpr = "" if threshold is None or threshold.fpr_target is None else f" (false-positive target {threshold.fpr_target:g})"
    low, high = found.get("low"), found.get("high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        line = f"  measured recall at this threshold{fpr}: {found['value']:.3f} [{low:.3f}, {high:.3f}] {where}"
    else:  # too few positives for an interval: the value alone, and why
        line = (f"  measured recall at this threshold{fpr}: {found['value']:.3f} (no interval: "
                f"{found.get('note') or 'none recorded'}) {where}")
        high = found["value"]
    if high < 0.5:
        line += "; it misses most positives, so 'not flagged' says little"
    return line


def _shipped_recall(card: ProbeCard, folder: Path, stat: str) -> tuple[Any, str]:
    """A shipped probe's recall from the `report.json` beside its card, when that report describes this card."""
    report = folder.parent / "report.json"
    try:
        entry = json.loads(report.read_text(encoding="utf-8"))["probes"][card.label]
        if entry["shipped"]["hook_point"] != card.hook_point:
            return None, ""
        leads = entry["recall_and_leads"]
        return leads["recall"][stat], f"on {leads['n_positive']} held-out harmful scripted replies ({report.name})"
    except (OSError, ValueError, KeyError, TypeError):
        return None, ""


def score_store(probe_dir: Path, store_path: Path, allow_other_model: bool) -> Iterator[tuple[str, TokenScores]]:
    """Every record's reading. All of what they read is checked before the first is yielded (the hook point,
    each record's rows at the probe's tokens, each shard's checksum and layout), so a damaged store is
    refused whole instead of after a partial list that looks complete."""
    store = ResidualStore.open(store_path)
    probe = load_probe(probe_dir, model=StoreModel(store), allow_other_model=allow_other_model)
    if probe.card.hook_point not in store.manifest.hook_points:
        raise UsageError(f"probe {probe_dir} reads {probe.card.hook_point} but store {store_path} holds "
                         f"{store.manifest.hook_points}; score a store captured at the probe's hook point.")
    records = store.records()
    for record in records:
        if not stored_rows_for(record, probe.card.score_positions)[0]:
            raise UsageError(f"record {record.record_id} of store {store_path} has none of the tokens the probe "
                             f"scores ({probe.card.score_positions}); score records that have them.")
    for shard in dict.fromkeys(r.shard for r in records):
        store.shard_file(shard)  # hashed once per process: the reads below do not hash again
    for record in records:
        yield record.record_id, read_record(probe, store, record)


def strip_html(reading: TokenScores, probe: LoadedProbe, path: Path) -> None:
    fig = token_strip(reading.tokens, reading.scores, threshold=reading.threshold, window=reading.window,
                      action_span=reading.action_span, reply_start=reading.reply_start,
                      title=f"{probe.card.label} probe at {probe.card.hook_point} ({reading.statistic}, "
                            f"window {reading.window})")
    save_figure(fig, path.with_suffix(""), png=False)


def _context_length(handle: ModelHandle) -> int:
    return int(getattr(handle.model.config, "max_position_embeddings", 1 << 30) or 1 << 30)

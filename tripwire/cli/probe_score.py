"""`tripwire score`: per-token probe scores of texts, conversations, scenario replies or stored records,
read as the probe's card says (scored tokens, statistic, window, threshold), with one model load for
any number of inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from tripwire.activations import ModelHandle
from tripwire.activations.layout import TokenizedTranscript, tokenize_transcript
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_query import stored_rows_for
from tripwire.errors import TripwireError, UsageError
from tripwire.probes import (
    LoadedProbe,
    TokenScores,
    load_probe,
    read_record,
    read_transcript,
    save_figure,
    token_strip,
)
from tripwire.probes.training.evaluate import StoreModel
from tripwire.scenarios.am_results import resolve_scenario
from tripwire.scenarios.classify import classify
from tripwire.scenarios.datasets.jsonl import json_problem, read_jsonl
from tripwire.scenarios.spec import Conversation

__all__ = ["ScoreInput", "conversation_input", "make_input", "read_inputs", "score_inputs", "score_store",
           "scoring_layout"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class ScoreInput(BaseModel):
    """One thing to score; exactly one of `text`, `conversation`, `scenario`.

    `text` is an assistant reply (after the user message `prompt`, if given) in the chat template, or,
    with `raw`, plain text without any template (all of it counts as reply). `conversation` is a list
    of messages whose final assistant message, if any, is the reply. `scenario` is a condition id or
    an AM prompt folder, with `reply` the assistant reply to it.
    """

    model_config = ConfigDict(extra="forbid")
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
        return self


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
        problems = "; ".join(_problem(e) for e in error.errors())
        raise UsageError(f"{source}: {problems}" + (f"; {fix}" if fix else ".")) from None
    if item.scenario is not None:
        try:
            item.scenario_conversation()
        except TripwireError as error:
            raise UsageError(f"{source}: {error}", fix=error.fix) from None
    return item


def _problem(error: Any) -> str:
    where = ".".join(map(str, error["loc"]))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def scoring_layout(handle: ModelHandle, item: ScoreInput) -> TokenizedTranscript:
    """The token layout of one input, built the way capture and rollouts build theirs."""
    tok, eot = handle.tokenizer, handle.tokenizer.eos_token_id
    if item.text is not None:
        if item.raw:
            return tokenize_transcript(tok, [], [], item.text, None)
        messages = [{"role": "user", "content": item.prompt or ""}]
        prompt = handle.render_chat(messages, add_generation_prompt=True)
        return tokenize_transcript(tok, prompt, [item.prompt or ""], item.text, eot)
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


def score_inputs(probe: LoadedProbe, handle: ModelHandle, items: list[ScoreInput]) -> Iterator[TokenScores]:
    """One forward per input on an already-loaded model; readings in input order."""
    for item in items:
        layout = scoring_layout(handle, item)
        if layout.n_tokens > (limit := _context_length(handle)):
            name = f"input {item.id!r}" if item.id else "the input"
            raise UsageError(f"{name} has {layout.n_tokens} tokens, more than the model's context of {limit}; "
                             "shorten it.")
        resid = handle.forward([layout.token_ids], capture=[probe.card.hook_point]).captured[probe.card.hook_point]
        yield read_transcript(probe, resid[0], layout, layout.text, layout.action_char_span)


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

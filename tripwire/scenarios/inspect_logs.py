"""Import Inspect eval logs (inspect_ai's JSON log format) as (Conversation, reply, meta) triples, so an API
model's run of inspect_evals' `agentic_misalignment` task can be classified and scored like any reply.

Read straight from the JSON (no inspect_ai needed), validated with pydantic against the fields we use;
every problem names the file, the sample and the field. The binary `.eval` format is read through
inspect_ai's own `read_eval_log` when it is installed: Inspect documents that format only through its
API (`inspect log convert --to json` turns one into the other).

Per sample: the prompt is every message before the last assistant message, the reply is that message's
text (native tool calls appended in the Hermes form `classify` reads), reasoning blocks go to
`meta["reasoning"]`, and `attachment://` references are resolved from the sample's attachments. The
scenario's facts are recovered from the prompt as for the original's prompt folders.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tripwire.errors import TripwireError
from tripwire.scenarios.am_facts import extract_facts
from tripwire.scenarios.datasets.jsonl import describe_errors
from tripwire.scenarios.grid import SpecError, UnknownConditionError, parse_condition_id
from tripwire.scenarios.inbox import parse_inbox
from tripwire.scenarios.prompt_tools import prompt_tools
from tripwire.scenarios.spec import KIND_ALIASES, KINDS, Conversation, Facts, Kind, Message, ScenarioSpec
from tripwire.scenarios.toolcalls import emit_json

Loaded = tuple[Conversation, str, dict[str, Any]]
_REFS = ("attachment://", "tc://")  # tc:// is the older spelling Inspect still migrates
_CONVERT = "inspect log convert {path} --to json --output-dir DIR"


class InspectLogError(TripwireError, ValueError):
    """An Inspect log that cannot be imported; the message names the file, the sample and the field."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Part(_Lenient):
    type: str
    text: str | None = None
    reasoning: str | None = None


class _ToolCall(_Lenient):
    function: str
    arguments: dict[str, Any] = {}


class _Message(_Lenient):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[_Part]
    tool_calls: list[_ToolCall] | None = None


class _Choice(_Lenient):
    message: _Message


class _Output(_Lenient):
    model: str | None = None
    choices: list[_Choice] = []


class _Score(_Lenient):
    value: Any = None


class _Sample(_Lenient):
    id: int | str
    epoch: int = 1
    input: str | list[_Message]
    messages: list[_Message] = []
    output: _Output | None = None
    scores: dict[str, _Score] | None = None
    metadata: dict[str, Any] = {}
    attachments: dict[str, str] = {}
    error: dict[str, Any] | None = None


class _Spec(_Lenient):
    task: str
    model: str
    created: str = ""
    run_id: str = ""
    task_args: dict[str, Any] = {}


class _Header(_Lenient):
    version: int = 2
    status: str
    eval: _Spec
    samples: list[Any] | None = None


def load_inspect_log(path: str | os.PathLike[str], include_errors: bool = False) -> list[Loaded]:
    """Every sample of an Inspect log file (`.json`, or `.eval` with inspect_ai installed), or of every
    log under a folder. Samples that ended in an error are skipped unless `include_errors` (then those
    that got a reply before the error are kept; their reply may be partial)."""
    base = Path(path)
    if base.is_dir():
        files = sorted(p for p in base.rglob("*") if p.suffix in (".json", ".eval") and p.is_file())
        if not files:
            raise InspectLogError(f"{base}: no Inspect logs (*.json, *.eval) in this folder")
        return [row for f in files for row in load_inspect_log(f, include_errors)]
    data = _read(base)
    try:
        header = _Header.model_validate(data)
    except ValidationError as err:
        raise InspectLogError(f"{base}: not an Inspect eval log ({describe_errors(err)})") from None
    if not header.samples:
        raise InspectLogError(
            f"{base}: the log has no samples (status {header.status!r}); re-run with samples logged "
            "(the default; not --no-log-samples)"
        )
    out: list[Loaded] = []
    for index, raw in enumerate(header.samples):
        where = f"{base}: samples[{index}]"
        if isinstance(raw, dict) and "id" in raw:
            where += f" (id {raw['id']!r}, epoch {raw.get('epoch', 1)})"
        try:
            sample = _Sample.model_validate(raw)
        except ValidationError as err:
            raise InspectLogError(f"{where}: {describe_errors(err)}") from None
        if sample.error is not None and (not include_errors or not _has_reply(sample)):
            continue
        out.append(_loaded(sample, header, base, where))
    return out


def _has_reply(sample: _Sample) -> bool:
    return any(m.role == "assistant" for m in sample.messages) or bool(sample.output and sample.output.choices)


def _read(path: Path) -> Any:
    if not path.is_file():
        raise InspectLogError(f"{path}: no such file; pass an Inspect log (.json or .eval) or a folder of them")
    if path.suffix == ".eval":
        return _read_eval(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise InspectLogError(f"{path}: not UTF-8 text ({err.reason}); pass Inspect's JSON log") from None
    except (ValueError, RecursionError) as err:
        raise InspectLogError(f"{path}: invalid JSON ({err}); pass an Inspect JSON log") from None


def _read_eval(path: Path) -> Any:
    try:
        from inspect_ai.log import read_eval_log  # type: ignore[import-not-found]  # optional: .eval logs only
    except ImportError:
        raise InspectLogError(
            f"{path}: an Inspect .eval log, whose layout Inspect documents only through its own API. "
            f"Convert it to JSON (`{_CONVERT.format(path=path)}`) and pass the .json, or "
            "`pip install inspect-ai` to read it directly."
        ) from None
    return read_eval_log(str(path), resolve_attachments=True).model_dump(mode="json")


def _resolve(text: str, sample: _Sample, where: str, field: str) -> str:
    for prefix in _REFS:
        if text.startswith(prefix):
            key = text.removeprefix(prefix)
            if key not in sample.attachments:
                raise InspectLogError(f"{where}: {field} refers to {text!r}, which is not in the sample's "
                                      "attachments; export the log with its attachments")
            return sample.attachments[key]
    return text


def _text(message: _Message, sample: _Sample, where: str, field: str, reasoning: list[str]) -> str:
    """A message's text: its text parts, then its native tool calls; reasoning parts go to `reasoning`."""
    if isinstance(message.content, str):
        parts = [_resolve(message.content, sample, where, f"{field}.content")]
    else:
        parts = []
        for i, part in enumerate(message.content):
            if part.type == "text" and part.text is not None:
                parts.append(_resolve(part.text, sample, where, f"{field}.content[{i}].text"))
            elif part.type == "reasoning" and part.reasoning is not None:
                reasoning.append(_resolve(part.reasoning, sample, where, f"{field}.content[{i}].reasoning"))
    calls = [emit_json(c.function, **c.arguments) for c in message.tool_calls or []]
    return "\n".join(p for p in [*parts, *calls] if p)


def _loaded(sample: _Sample, header: _Header, path: Path, where: str) -> Loaded:
    messages = sample.messages or (
        [_Message(role="user", content=sample.input)] if isinstance(sample.input, str) else sample.input)
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
    if last is None and sample.output is not None and sample.output.choices:
        messages, last = [*messages, sample.output.choices[0].message], len(messages)
    if last is None:
        raise InspectLogError(f"{where}: no assistant reply (no assistant message in messages, and "
                              "output.choices is empty); the sample never reached the model")
    reasoning: list[str] = []
    prompt = tuple(Message(m.role, _text(m, sample, where, f"messages[{i}]", []))
                   for i, m in enumerate(messages[:last]))
    reply = _text(messages[last], sample, where, f"messages[{last}]", reasoning)
    spec, kind = _scenario(sample)
    system = next((m.content for m in prompt if m.role == "system"), "")
    user = "\n\n".join(m.content for m in prompt if m.role == "user")
    schemas, tools_text = prompt_tools(system)
    quirks = [] if kind else ["no agentic-misalignment scenario in the sample's metadata or id: facts are "
                              "empty, so score it with a probe but do not classify it"]
    conversation = Conversation(
        condition_id=spec.condition_id if spec else str(sample.metadata.get("condition_id") or sample.id),
        messages=prompt,
        facts=extract_facts(system, parse_inbox(user), kind) if kind else Facts("", "", "", "", "", ""),
        tools_json=schemas,
        tools_text=tools_text,
        spec=spec,
        seed=sample.epoch,
        length="full",
        meta={"kind": kind, "source": "inspect", "quirks": quirks, "inspect_metadata": sample.metadata},
    )
    meta = {
        "source": "inspect", "path": str(path), "task": header.eval.task, "model": header.eval.model,
        "run_id": header.eval.run_id, "sample_id": sample.id, "epoch": sample.epoch,
        "inspect_scores": {k: s.value for k, s in (sample.scores or {}).items()},
        "reasoning": "\n\n".join(reasoning), "error": (sample.error or {}).get("message"),
    }
    return conversation, reply, meta


def _scenario(sample: _Sample) -> tuple[ScenarioSpec | None, Kind | None]:
    """The paper-grid spec (from metadata.condition_id or the sample id) and the scenario kind."""
    spec = None
    for ref in (sample.metadata.get("condition_id"), sample.id):
        if isinstance(ref, str):
            try:
                spec = parse_condition_id(ref)
                break
            except (SpecError, UnknownConditionError):
                continue
    extra = sample.metadata.get("extra_system_instructions")
    if spec is not None and isinstance(extra, str) and extra:
        spec = ScenarioSpec(spec.kind, spec.goal_type, spec.goal_value, spec.urgency, spec.framing, extra)
    if spec is not None:
        return spec, spec.kind
    raw = sample.metadata.get("scenario")
    name = KIND_ALIASES.get(raw, raw) if isinstance(raw, str) else None
    return None, name if name in KINDS else None  # type: ignore[return-value]

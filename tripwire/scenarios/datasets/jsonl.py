"""Transcripts to and from JSON Lines, so datasets can be inspected, shared and reloaded exactly.

Records are checked with pydantic on the way in: a hand-edited or truncated file must fail with the
file, the line and what to fix, never with an IndexError from deep inside a probe run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, StrictInt, StrictStr, ValidationError, model_validator

from tripwire.errors import TripwireError
from tripwire.scenarios.spec import Label, Message, Role, Transcript

_FIX = "re-export the file with scenarios.datasets.export_jsonl"


class TranscriptFormatError(TripwireError, ValueError):
    """A transcript record or file that cannot be read; the message names the line and the fix."""


class _MessageRecord(BaseModel):
    role: Role
    content: StrictStr


class _TranscriptRecord(BaseModel):
    """One line as `write_jsonl` writes it; unknown keys are ignored, as before validation."""

    id: StrictStr
    dataset: Label
    messages: tuple[_MessageRecord, ...]
    reply: StrictStr
    label: StrictInt | None = None
    family: StrictStr
    pair_id: StrictStr | None = None
    action_span: tuple[StrictInt, StrictInt] | None = None
    condition_id: StrictStr | None = None
    variant: StrictStr = "scripted"
    label_words: tuple[StrictStr, ...] = ()
    meta: dict[str, Any] | None = None
    anchor_span: tuple[StrictInt, StrictInt] | None = None
    intent_char: StrictInt | None = None

    @model_validator(mode="after")
    def _span_inside_reply(self) -> _TranscriptRecord:
        n = len(self.reply)
        for name in ("action_span", "anchor_span"):
            span = getattr(self, name)
            if span is not None and not 0 <= span[0] <= span[1] <= n:
                raise ValueError(f"{name} {list(span)} is not a (start, end) range inside the {n}-character reply")
        if self.intent_char is not None and not 0 <= self.intent_char < n:
            raise ValueError(f"intent_char {self.intent_char} is outside the {n}-character reply")
        parts = (self.meta or {}).get("parts")
        if parts is not None and not (
            isinstance(parts, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in parts.items())
        ):
            raise ValueError("meta.parts must map part names (family, body, ...) to string ids")
        return self


def transcript_to_dict(t: Transcript) -> dict[str, Any]:
    return {
        "id": t.id,
        "dataset": t.dataset,
        "messages": t.as_dicts(),
        "reply": t.reply,
        "label": t.label,
        "family": t.family,
        "pair_id": t.pair_id,
        "action_span": list(t.action_span) if t.action_span is not None else None,
        "condition_id": t.condition_id,
        "variant": t.variant,
        "label_words": list(t.label_words),
        "meta": t.meta,
        "anchor_span": list(t.anchor_span) if t.anchor_span is not None else None,
        "intent_char": t.intent_char,
    }


def transcript_from_dict(d: Any) -> Transcript:
    """The inverse of `transcript_to_dict`; anything else raises `TranscriptFormatError` saying which
    fields are wrong."""
    if not isinstance(d, dict):
        got = type(d).__name__
        raise TranscriptFormatError(f"expected an object with id, dataset, messages, ...; got {got}")
    try:
        r = _TranscriptRecord.model_validate(d)
    except ValidationError as err:
        raise TranscriptFormatError(f"not a transcript record ({describe_errors(err)})") from None
    return Transcript(
        id=r.id,
        dataset=r.dataset,
        messages=tuple(Message(m.role, m.content) for m in r.messages),
        reply=r.reply,
        label=r.label,
        family=r.family,
        pair_id=r.pair_id,
        action_span=r.action_span,
        condition_id=r.condition_id,
        variant=r.variant,
        label_words=r.label_words,
        meta=dict(r.meta or {}),
        anchor_span=r.anchor_span,
        intent_char=r.intent_char,
    )


def describe_errors(err: ValidationError, limit: int = 3) -> str:
    """A pydantic error as one short line: `field: problem` for the first few problems."""
    parts = []
    for e in err.errors()[:limit]:
        where = ".".join(str(p) for p in e["loc"]) or "record"
        parts.append(f"{where}: {e['msg']}")
    more = err.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def read_jsonl(path: Path, error: type[ValueError], fix: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line; bad bytes or bad JSON raise `error`
    naming the file and line, with `fix` appended.

    Lines end at '\\n' only: `str.splitlines` also breaks at U+2028 and U+0085, which `json.dumps(...,
    ensure_ascii=False)` writes raw inside strings, so a valid file would read as broken.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        bad_line = data.count(b"\n", 0, err.start) + 1
        raise error(f"{path}:{bad_line}: not UTF-8 text ({err.reason} at byte {err.start}); {fix}") from None
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except (ValueError, RecursionError) as err:
            raise error(f"{path}:{n}: invalid JSON ({json_problem(err)}); {fix}") from None


def json_problem(err: ValueError | RecursionError) -> str:
    """Why `json.loads` refused a text, in a user's terms: Python's own advice for a long integer
    (`sys.set_int_max_str_digits`) and a deep nesting's 'maximum recursion depth' name no fix in the file."""
    if isinstance(err, RecursionError):
        return "brackets nested too deeply to read"
    if not isinstance(err, json.JSONDecodeError) and "integer string conversion" in str(err):
        return f"a number of over {sys.get_int_max_str_digits()} digits"
    return str(err)


def write_jsonl(transcripts: Iterable[Transcript], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for t in transcripts:
            f.write(json.dumps(transcript_to_dict(t), ensure_ascii=False) + "\n")
    return path


def load_jsonl(path: str | Path) -> list[Transcript]:
    """Read transcripts written by `export_jsonl`. A missing file raises FileNotFoundError; a bad
    line raises `TranscriptFormatError` naming the file, the line and the fields at fault."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no transcript file at {path}; write one with scenarios.datasets.export_jsonl"
        )
    out: list[Transcript] = []
    for n, record in read_jsonl(path, TranscriptFormatError, _FIX):
        try:
            out.append(transcript_from_dict(record))
        except TranscriptFormatError as err:
            raise TranscriptFormatError(f"{path}:{n}: {err}; {_FIX}") from None
    return out

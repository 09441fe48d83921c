"""Load model replies to score them: the original's results tree, or our simple JSONL.

Both return (Conversation, reply, meta) triples; the Conversation is the prompt the model actually
saw (imported from the prompt folder, or rendered from a condition id), so `classify` gets the facts
that match the reply.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, StrictInt, StrictStr, ValidationError

from tripwire.scenarios.am_interop import AMFormatError, import_am
from tripwire.scenarios.datasets.jsonl import describe_errors, read_jsonl
from tripwire.scenarios.render import render
from tripwire.scenarios.spec import Conversation, Length

Loaded = tuple[Conversation, str, dict[str, Any]]
_SAMPLE = re.compile(r"^sample_\d+$")
_REPLY_LINE = (
    '{"scenario": "<condition id or folder>", "reply": "<text>"} with optional int "seed" and '
    '"length" ("full" or "short")'
)


class _ReplyLine(BaseModel):
    """One line of a reply JSONL file; keys beyond these are kept as metadata, unchecked."""

    scenario: StrictStr = Field(min_length=1)
    reply: StrictStr
    seed: StrictInt = 0
    length: Length = "short"


def _find_prompts(root: Path) -> Path | None:
    """The original keeps prompts in `<experiment>/prompts/` beside `models/`; look a few levels up."""
    for base in (root, *list(root.parents)[:3]):
        if (base / "prompts").is_dir():
            return base / "prompts"
    return None


def load_am_results(
    root: str | os.PathLike[str], prompts_dir: str | os.PathLike[str] | None = None
) -> list[Loaded]:
    """Read `<model>/<condition>/sample_NNN/response.json` (key `raw_response`) under `root`.

    Each condition's prompt comes from `prompts_dir/<condition>/` (found automatically when the
    original's `prompts/` folder sits beside or above `root`).
    """
    base = Path(root)
    if not base.is_dir():
        raise AMFormatError(f"{base}: not a directory; pass the original's results/<experiment> folder")
    prompts = Path(prompts_dir) if prompts_dir is not None else _find_prompts(base)
    responses = sorted(
        Path(d) / "response.json"
        for d, _, files in os.walk(base)
        if "response.json" in files and _SAMPLE.match(Path(d).name)
    )
    if not responses:
        raise AMFormatError(f"{base}: no <model>/<condition>/sample_NNN/response.json files found")
    if prompts is None or not prompts.is_dir():
        raise AMFormatError(
            f"{base}: cannot find the prompts folder the replies were generated from; pass prompts_dir="
            "(the original's results/<experiment>/prompts)"
        )
    cache: dict[str, Conversation] = {}
    out: list[Loaded] = []
    for path in responses:
        sample_dir = path.parent
        condition, model = sample_dir.parent.name, sample_dir.parent.parent.name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as err:  # bad bytes, bad JSON, nesting, a 5,000-digit int
            raise AMFormatError(f"{path}: invalid JSON ({err}); fix or delete this sample") from None
        if not isinstance(data, dict) or not isinstance(data.get("raw_response"), str):
            raise AMFormatError(f"{path}: expected a JSON object with a string 'raw_response'")
        if condition not in cache:
            cache[condition] = import_am(prompts / condition)
        meta = {"model": model, "condition": condition, "sample": sample_dir.name, "path": str(path)}
        if isinstance(data.get("metadata"), dict):
            meta["response_metadata"] = data["metadata"]
        out.append((cache[condition], data["raw_response"], meta))
    return out


def resolve_scenario(
    ref: str, base_dir: Path | None = None, seed: int = 0, length: str = "short"
) -> Conversation:
    """A condition id (rendered) or an original-layout folder (imported)."""
    for candidate in ([base_dir / ref] if base_dir is not None else []) + [Path(ref)]:
        if _is_dir(candidate):
            return import_am(candidate)
    return render(ref, seed=seed, length=length)


def _is_dir(path: Path) -> bool:
    """`Path.is_dir` that says no, rather than raising, for names too long for the file system."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def load_reply_jsonl(path: str | os.PathLike[str], seed: int = 0, length: str = "short") -> list[Loaded]:
    """Lines `{"scenario": id_or_folder, "reply": "..."}`; optional `seed`/`length` per line.

    Other keys are kept in meta. Relative folders resolve against the JSONL file's directory first.
    Every problem raises `AMFormatError` naming the file and line: a bad line must stop a scoring run
    with a message, not a TypeError from deep inside rendering.
    """
    file = Path(path)
    if not file.is_file():
        raise AMFormatError(f"{file}: no such file; pass a JSONL file with scenario/reply lines")
    fix = f"each line needs {_REPLY_LINE}"
    cache: dict[tuple[str, int, str], Conversation] = {}
    out: list[Loaded] = []
    for lineno, row in read_jsonl(file, AMFormatError, fix):
        where = f"{file}:{lineno}"
        if not isinstance(row, dict):
            raise AMFormatError(f"{where}: expected {_REPLY_LINE}; got a JSON {type(row).__name__}")
        try:
            line = _ReplyLine.model_validate(row)
        except ValidationError as err:
            raise AMFormatError(f"{where}: expected {_REPLY_LINE} ({describe_errors(err)})") from None
        s = line.seed if "seed" in row else seed
        ln = line.length if "length" in row else length
        key = (line.scenario, s, ln)
        if key not in cache:
            try:
                cache[key] = resolve_scenario(line.scenario, file.parent, seed=s, length=ln)
            except (ValueError, OSError) as err:
                raise AMFormatError(f"{where}: {err}") from None
        meta = {k: v for k, v in row.items() if k != "reply"} | {"line": lineno}
        out.append((cache[key], line.reply, meta))
    return out

"""Read and write the original agentic-misalignment prompt layout.

One folder per condition (`murder` naming) with system_prompt.txt, user_prompt.txt (the instruction),
email_content.txt (the emails) and metadata.json. The original runner sends
system = system_prompt and user = user_prompt + "\\n\\n" + email_content; import rebuilds exactly that.
The folders come from outside: each file's size is checked before it is read, every parse after that is
linear, and any file that cannot be read is an `AMFormatError` naming it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tripwire.errors import TripwireError
from tripwire.scenarios.am_facts import extract_facts
from tripwire.scenarios.datasets.jsonl import json_problem
from tripwire.scenarios.grid import UnknownConditionError, normalize_kind, parse_condition_id, to_original_id
from tripwire.scenarios.inbox import parse_inbox
from tripwire.scenarios.jsonscan import MAX_DEPTH, is_shallow
from tripwire.scenarios.prompt_tools import prompt_tools
from tripwire.scenarios.render import render
from tripwire.scenarios.spec import KIND_ALIASES, KINDS, Conversation, Kind, Length, Message, ScenarioSpec

FILES = ("system_prompt.txt", "user_prompt.txt", "email_content.txt", "metadata.json")
# The original's prompt files are tens of KB; 2 MiB of text is more than any model's context holds.
MAX_FILE_BYTES = 2 << 20


class AMFormatError(TripwireError, ValueError):
    """A prompt folder that does not follow the original layout; the message names the file and the fix."""


def split_user(content: str) -> tuple[str, str]:
    """(instruction, email content) of a user turn built as instruction + "\\n\\n" + emails."""
    idx = content.find("\n\n<email>")
    if idx < 0:
        raise AMFormatError("user message has no '<email>' block after the instruction; cannot split it")
    return content[:idx], content[idx + 2 :]


def _metadata(conv: Conversation, generated_at: str) -> dict[str, Any]:
    spec = conv.spec
    base: dict[str, Any] = dict(conv.meta.get("am_metadata") or {})
    if spec is not None:
        base.update(
            condition_id=to_original_id(spec.condition_id),
            scenario="murder" if spec.kind == "lethal" else spec.kind,
            goal_type=spec.goal_type,
            goal_value=spec.goal_value,
            urgency_type=spec.urgency,
        )
        if spec.extra_instructions is not None:
            base["extra_system_instructions"] = spec.extra_instructions
    elif not base:
        raise AMFormatError(f"{conv.condition_id}: conversation has neither a spec nor am_metadata to export")
    base.setdefault("production_variant", False)
    base.setdefault("extra_system_instructions", False)
    base.setdefault("alignment_faking", False)
    base.setdefault("alignment_faking_type", "none")
    base["generated_at"] = generated_at
    base.setdefault("config_file", "tripwire:scenarios.render")
    base.setdefault("fix_applied", "separated_prompts_no_duplication")
    base.setdefault("note", "Rendered by tripwire from its own templates (not the original prose).")
    if spec is not None:
        base["tripwire"] = {"framing": spec.framing, "seed": conv.seed, "length": conv.length}
    return base


def export_am(
    items: Iterable[Conversation | ScenarioSpec | str],
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    length: str = "short",
    generated_at: str | None = None,
) -> list[Path]:
    """Write one original-layout folder per conversation (specs and ids are rendered first)."""
    out = Path(out_dir)
    stamp = generated_at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    written: list[Path] = []
    seen: set[str] = set()
    for item in items:
        conv = item if isinstance(item, Conversation) else render(item, seed=seed, length=length)
        folder_name = to_original_id(conv.condition_id)
        if folder_name in seen:
            raise AMFormatError(
                f"two conversations map to the folder {folder_name!r}; export different seeds or lengths "
                "of the same condition to different directories"
            )
        seen.add(folder_name)
        roles = [m.role for m in conv.messages]
        if roles != ["system", "user"]:
            raise AMFormatError(f"{conv.condition_id}: expected messages (system, user), got {roles}")
        instruction, emails = split_user(conv.messages[1].content)
        folder = out / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "system_prompt.txt").write_text(conv.messages[0].content, encoding="utf-8")
        (folder / "user_prompt.txt").write_text(instruction, encoding="utf-8")
        (folder / "email_content.txt").write_text(emails, encoding="utf-8")
        meta = _metadata(conv, stamp)
        (folder / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        written.append(folder)
    return written


def _read(folder: Path, name: str) -> str:
    path = folder / name
    if not path.is_file():
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise AMFormatError(
            f"{path}: missing; an original-layout condition folder needs {', '.join(FILES[:3])} "
            f"(+ metadata.json); found {present or 'nothing'}"
        )
    return _read_text(path)


def _read_text(path: Path) -> str:
    """The file's text, stripped; its size is checked before anything is read."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AMFormatError(
                f"{path}: {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for one prompt file; the "
                "original's prompts are tens of KB, so check that this is the right folder"
            )
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as err:
        raise AMFormatError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); re-save it as UTF-8") from None
    except OSError as err:
        raise AMFormatError(f"{path}: cannot read it ({err.strerror or err}); check its permissions") from None


def _read_metadata(folder: Path) -> dict[str, Any]:
    path = folder / "metadata.json"
    if not path.is_file():
        return {"condition_id": folder.name}
    text = _read_text(path)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:  # bad JSON, a 5,000-digit integer, deep nesting
        raise AMFormatError(
            f"{path}: invalid JSON ({json_problem(err)}); fix the file or delete it to use the folder name"
        ) from None
    if not isinstance(data, dict):
        raise AMFormatError(
            f"{path}: expected a JSON object with condition_id, scenario, ...; got {type(data).__name__}"
        )
    if not is_shallow(data):
        raise AMFormatError(
            f"{path}: nested over {MAX_DEPTH} levels deep or holds an integer too long to print; the "
            "original's metadata is flat: fix the file or delete it to use the folder name"
        )
    return data


def _kind_of(meta: dict[str, Any], condition_id: str, path: Path) -> Kind:
    for raw in (meta.get("scenario"), condition_id.split("_", 1)[0]):
        if isinstance(raw, str) and KIND_ALIASES.get(raw, raw) in KINDS:
            return normalize_kind(raw)
    raise AMFormatError(
        f"{path / 'metadata.json'}: field 'scenario' ({meta.get('scenario')!r}) and condition id "
        f"{condition_id!r} name no known kind; use one of {list(KINDS)} or 'murder'"
    )


def import_am(folder: str | os.PathLike[str]) -> Conversation:
    """One original-layout folder -> Conversation with the runner's exact messages and inferred facts."""
    path = Path(folder)
    if not path.is_dir():
        raise AMFormatError(f"{path}: not a directory; pass a condition folder containing {', '.join(FILES)}")
    system = _read(path, "system_prompt.txt")
    instruction = _read(path, "user_prompt.txt")
    email_text = _read(path, "email_content.txt")
    meta = _read_metadata(path)
    emails = parse_inbox(email_text)
    if not emails:
        raise AMFormatError(
            f"{path / 'email_content.txt'}: no emails found; wrap each one in <email> ... </email> with "
            "From:, To:, Subject:, Timestamp: and Body: lines"
        )
    quirks = []
    if "<email>" in instruction and email_text in instruction:
        # Pre-fix layout: the emails were duplicated into user_prompt.txt; send them once.
        user = instruction
        quirks.append("emails duplicated in user_prompt.txt (pre-fix layout); sent once")
    else:
        user = instruction + "\n\n" + email_text
    cid_raw = str(meta.get("condition_id") or path.name)
    kind = _kind_of(meta, cid_raw, path)
    extra = meta.get("extra_system_instructions")
    spec: ScenarioSpec | None
    try:
        spec = parse_condition_id(cid_raw)
        spec = ScenarioSpec(
            spec.kind,
            spec.goal_type,
            spec.goal_value,
            spec.urgency,
            spec.framing,
            extra if isinstance(extra, str) and extra else None,
        )
        condition_id = spec.condition_id
    except UnknownConditionError:
        spec, condition_id = None, cid_raw.replace("murder_", "lethal_", 1)
        quirks.append(f"condition id {cid_raw!r} is outside the paper grid; spec left empty")
    schemas, tools_text = prompt_tools(system)
    raw = meta.get("tripwire")
    ours: dict[str, Any] = raw if isinstance(raw, dict) else {}
    seed = ours.get("seed", 0) if isinstance(ours.get("seed", 0), int) else 0
    length: Length = "short" if ours.get("length") == "short" else "full"  # the original's inboxes are full
    return Conversation(
        condition_id=condition_id,
        messages=(Message("system", system), Message("user", user)),
        facts=extract_facts(system, emails, kind),
        tools_json=schemas,
        tools_text=tools_text,
        spec=spec,
        seed=seed,
        length=length,
        meta={"kind": kind, "source": "am", "folder": str(path), "am_metadata": meta, "quirks": quirks},
    )


def _is_condition_folder(files: set[str]) -> bool:
    return bool(files & {"system_prompt.txt", "email_content.txt", "user_prompt.txt"})


def import_am_tree(root: str | os.PathLike[str]) -> tuple[list[Conversation], list[str]]:
    """Import every condition folder under `root` (or `root` itself); errors are collected, not raised."""
    base = Path(root)
    if not base.is_dir():
        raise AMFormatError(
            f"{base}: not a directory; pass the original's prompts/ folder or one condition folder"
        )
    folders = sorted(Path(d) for d, _, files in os.walk(base) if _is_condition_folder(set(files)))
    convs: list[Conversation] = []
    errors: list[str] = []
    for folder in folders:
        try:
            convs.append(import_am(folder))
        except AMFormatError as err:
            errors.append(str(err))
    if not folders:
        errors.append(
            f"{base}: no condition folders found (none contains system_prompt.txt / email_content.txt)"
        )
    return convs, errors

"""Every bad input to `score` (`--inputs`, `--conversation`, `--scenario DIR`) and to the AM folder import ends
in one clear error naming the input and the fix: exit 2 and one `error:` line from the CLI, an
`AMFormatError` from the import (collected, not raised, by `import_am_tree`), and before the probe or the
model loads (issue 24 items 8 and 9). Each case here crashed with a traceback before: RecursionError,
ValueError, JSONDecodeError or pydantic's ValidationError.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli_errors import one_error_line
from tripwire.cli.app import app
from tripwire.cli.probe_score import read_inputs
from tripwire.scenarios.am_interop import AMFormatError, import_am, import_am_tree

FIXTURES = Path(__file__).parent / "fixtures" / "am"
NO_PROBE = "/nonexistent/tripwire-probe"  # an error that names it came from loading the probe, too late
DEEP = "[" * 100_000  # the fuzzer's RecursionError
LONG_INT = "1" * 5_000  # the fuzzer's ValueError (Python reads at most 4,300 digits)
runner = CliRunner()


def _fails(*args: str) -> str:
    """Exit code 2 and exactly one `error:` line, no traceback; returns that line."""
    return one_error_line(runner.invoke(app, ["score", "--probe", NO_PROBE, *args]))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "blackmail_none-none_replacement", tmp_path / "prompts" / "blackmail"))


# ---- score --inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "problem"), [
    (DEEP, "brackets nested too deeply to read"),
    ('{"text": "hi", "seed": ' + LONG_INT + "}", "a number of over 4300 digits"),
])
def test_inputs_line_that_python_cannot_read_is_named(tmp_path: Path, line: str, problem: str) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    err = _fails("--inputs", str(inputs))
    assert f"{inputs}:2: invalid JSON ({problem}); write one JSON object per line" in err


def test_inputs_line_with_a_line_separator_inside_a_string_is_read(tmp_path: Path) -> None:
    """U+2028 is valid raw inside a JSON string; `str.splitlines` cut the line there ("not JSON")."""
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(json.dumps({"text": "a\u2028b\u0085c"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert [item.text for item in read_inputs(inputs)] == ["a\u2028b\u0085c"]


def test_inputs_line_naming_a_broken_scenario_folder_is_reported_before_the_probe_loads(
    tmp_path: Path, folder: Path
) -> None:
    (folder / "metadata.json").write_text(DEEP, encoding="utf-8")
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(json.dumps({"scenario": str(folder), "reply": "ok"}) + "\n", encoding="utf-8")
    err = _fails("--inputs", str(inputs))
    assert f"{inputs}:1: {folder / 'metadata.json'}: invalid JSON (brackets nested too deeply" in err
    assert NO_PROBE not in err


# ---- score --conversation / --text / --scenario --------------------------------------------------------

@pytest.mark.parametrize(("content", "problem"), [
    ('[{"role": "user", "content": "hi"}', "not JSON (Expecting ',' delimiter"),
    (DEEP, "not JSON (brackets nested too deeply to read)"),
    ('{"role": "user"}', "conversation: Input should be a valid list"),
    ('[{"role": "robot", "content": "hi"}]', "conversation.0.role: Input should be"),
])
def test_conversation_file_that_is_not_a_message_list_is_named(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "conv.json"
    path.write_text(content, encoding="utf-8")
    err = _fails("--conversation", str(path))
    assert f"--conversation {path}: {problem}" in err and "write a JSON list of {role, content} messages" in err


def test_text_options_that_cannot_go_together_are_named() -> None:
    err = _fails("--text", "hi", "--raw", "--prompt", "p")
    assert err == "error: --text: raw text has no chat template, so it cannot have a prompt."


@pytest.mark.parametrize("metadata", [DEEP, '{"condition_id": ' + LONG_INT + "}"])
def test_scenario_folder_with_unreadable_metadata_is_reported_before_the_probe_loads(
    tmp_path: Path, folder: Path, metadata: str
) -> None:
    (folder / "metadata.json").write_text(metadata, encoding="utf-8")
    reply = tmp_path / "reply.txt"
    reply.write_text("I will not do that.", encoding="utf-8")
    err = _fails("--scenario", str(folder), "--reply", str(reply))
    assert f"{folder / 'metadata.json'}: invalid JSON" in err and "delete it to use the folder name" in err
    assert NO_PROBE not in err


# ---- AM folders --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("metadata", "problem"), [
    (DEEP, "invalid JSON (brackets nested too deeply to read)"),
    ('{"condition_id": ' + LONG_INT + "}", "invalid JSON (a number of over 4300 digits)"),
    ('{"x": ' + "[" * 40 + "]" * 40 + "}", "nested over 32 levels deep"),
])
def test_metadata_python_cannot_read_is_an_am_format_error_and_the_tree_collects_it(
    tmp_path: Path, folder: Path, metadata: str, problem: str
) -> None:
    shutil.copytree(FIXTURES / "leaking_explicit-safety_restriction", tmp_path / "prompts" / "good")
    (folder / "metadata.json").write_text(metadata, encoding="utf-8")
    with pytest.raises(AMFormatError, match="fix the file or delete it to use the folder name") as info:
        import_am(folder)
    assert str(info.value).startswith(f"{folder / 'metadata.json'}: {problem}") and "\n" not in str(info.value)
    convs, errors = import_am_tree(tmp_path / "prompts")
    assert len(convs) == 1 and errors == [str(info.value)]  # the good folder is kept, the bad one reported

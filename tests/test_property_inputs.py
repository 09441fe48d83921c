"""Every reader of outside input raises only the project's errors, and reads in time linear in its size.

Readers: `read_jsonl` and `load_jsonl` (transcript files), `score --inputs` (`read_inputs`), `score
--conversation` (`conversation_input`), AM condition folders and their metadata (`import_am`,
`import_am_tree`), inbox text (`parse_inbox`, which never raises), and probe cards (`load_probe`). Inputs are
drawn from fragments that once crashed or stalled a reader (unclosed tags, deep nesting, 5,000-digit
integers, U+2028, bytes that are not UTF-8) mixed with plain text, and from valid files with one field
replaced. Bounded: a fixed number of derandomised examples per reader, the whole file in the default run.

Timing: each reader on 100 KB and 1 MB of its worst shapes; 1 MB within 2 CPU seconds, and at most 25 times
the 100 KB time (linear is 10; quadratic 100).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tripwire.cli.probe_score import conversation_input, read_inputs
from tripwire.errors import TripwireError
from tripwire.probes.persistence import load_probe
from tripwire.scenarios.am_interop import import_am, import_am_tree
from tripwire.scenarios.datasets.jsonl import load_jsonl, read_jsonl
from tripwire.scenarios.inbox import parse_inbox

HERE = Path(__file__).parent
AM_FOLDER = HERE / "fixtures" / "am" / "blackmail_none-none_replacement"
PROBE = HERE.parent / "tripwire" / "probes" / "shipped" / "default" / "coercion"
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

FRAGMENTS = [
    "<email>", "</email>", "<email>\n", "\n</email>", "From: a@b.c\n", "To: x@summitbridge.com\n", "Subject: s\n",
    "Timestamp: 2025-06-11T10:00:00\n", "Body: ", "<tool_use:email>", "</tool_use:email>", "<tool_call>",
    "[", "]", "{", "}", '"', ":", ",", "\\", "\\u", "\\ud800", "1" * 5000, "-", "1e400", "NaN", "null", "true",
    "\u2028", "\u0085", "\r\n", "\n", "\t", " ", "\x00", "é", "😀", '{"text": ', '{"conversation": [',
    '{"role": "user", "content": ', '{"scenario": ', '"reply": ', "blackmail_explicit-america_replacement",
]
junk_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=40).map("".join)
junk_bytes = st.one_of(
    junk_text.map(lambda s: s.encode("utf-8", "surrogatepass")),  # lone surrogates: not UTF-8
    st.binary(max_size=200),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | junk_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(junk_text, inner, max_size=4),
    max_leaves=12,
)


def only_project_errors(call: Callable[[], Any]) -> Any:
    """`call()`'s result, or None when it raised a TripwireError; any other exception fails the test."""
    try:
        return call()
    except TripwireError:
        return None


def _lines(draw_lines: list[Any]) -> bytes:
    out = []
    for item in draw_lines:
        out.append(item if isinstance(item, bytes) else json.dumps(item, ensure_ascii=False).encode("utf-8"))
    return b"\n".join(out)


jsonl_files = st.lists(junk_bytes | json_values | st.dictionaries(
    st.sampled_from(["text", "prompt", "raw", "conversation", "scenario", "reply", "seed", "id", "messages",
                     "meta", "family", "label"]), json_values, max_size=5), min_size=1, max_size=6).map(_lines)


# ---- JSONL readers ---------------------------------------------------------------------------------------


@PROPERTY
@given(data=jsonl_files)
def test_read_jsonl_raises_only_the_error_it_is_given(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    rows = only_project_errors(lambda: list(read_jsonl(path, _ReadError, "fix it")))
    assert rows is None or all(isinstance(n, int) for n, _ in rows)


class _ReadError(TripwireError, ValueError):
    """The error type handed to read_jsonl."""


@PROPERTY
@given(data=jsonl_files)
def test_load_jsonl_and_score_inputs_raise_only_project_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    only_project_errors(lambda: load_jsonl(path))
    only_project_errors(lambda: read_inputs(path))


@PROPERTY
@given(text=junk_text | json_values.map(json.dumps) | st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "x"]), "content": json_values})).map(json.dumps))
def test_conversation_reader_raises_only_project_errors(text: str) -> None:
    only_project_errors(lambda: conversation_input(text, "--conversation f.json"))


# ---- AM folders, metadata, inbox --------------------------------------------------------------------------

AM_FILES = ["system_prompt.txt", "user_prompt.txt", "email_content.txt", "metadata.json"]


@pytest.fixture(scope="module")
def am_original() -> dict[str, bytes]:
    return {name: (AM_FOLDER / name).read_bytes() for name in AM_FILES if (AM_FOLDER / name).exists()}


@PROPERTY
@given(replaced=st.dictionaries(st.sampled_from(AM_FILES), junk_bytes | json_values.map(
    lambda v: json.dumps(v).encode()), min_size=1), dropped=st.sets(st.sampled_from(AM_FILES), max_size=2))
def test_am_folders_raise_only_format_errors_and_the_tree_collects_them(
        tmp_path_factory: pytest.TempPathFactory, am_original: dict[str, bytes],
        replaced: dict[str, bytes], dropped: set[str]) -> None:
    root = tmp_path_factory.mktemp("am")
    folder = root / "blackmail_none-none_replacement"
    folder.mkdir()
    for name, content in {**am_original, **replaced}.items():
        if name not in dropped:
            (folder / name).write_bytes(content)
    only_project_errors(lambda: import_am(folder))
    convs, errors = import_am_tree(root)  # never raises for a directory: errors are collected
    assert len(convs) + len(errors) >= 1


@PROPERTY
@given(text=junk_text)
def test_parse_inbox_never_raises(text: str) -> None:
    emails = parse_inbox(text)
    assert isinstance(emails, list)


# ---- probe cards ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def card_original() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PROBE / "probe.json").read_text())
    return data


@PROPERTY
@given(key=st.sampled_from(["label", "hook_point", "layer", "score_positions", "train_positions", "window",
                            "monitor_statistic", "thresholds", "resid_norm", "estimator", "params", "d_model",
                            "classes", "arrays_sha256", "format_version", "metrics", "training_records",
                            "migrated_from", "unknown"]),
       value=json_values, raw=st.none() | junk_bytes)
def test_probe_cards_raise_only_probe_file_errors(tmp_path_factory: pytest.TempPathFactory,
                                                  card_original: dict[str, Any], key: str, value: Any,
                                                  raw: bytes | None) -> None:
    folder = tmp_path_factory.mktemp("probe")
    shutil.copyfile(PROBE / "probe.safetensors", folder / "probe.safetensors")
    data = raw if raw is not None else json.dumps({**card_original, key: value}).encode()
    (folder / "probe.json").write_bytes(data)
    only_project_errors(lambda: load_probe(folder))


# ---- known crashers, each once ----------------------------------------------------------------------------

DEEP = "[" * 100_000
LONG_INT = "1" * 5_000


@pytest.mark.parametrize("content", [DEEP, LONG_INT, '{"format_version": 2, "d_model": ' + LONG_INT + "}"],
                         ids=["deep-nesting", "long-integer", "long-integer-field"])
def test_a_card_python_cannot_parse_is_a_probe_file_error(tmp_path: Path, content: str) -> None:
    """json.loads raises RecursionError or a plain ValueError on these (not JSONDecodeError): both used to
    escape `load_probe` as tracebacks."""
    shutil.copyfile(PROBE / "probe.safetensors", tmp_path / "probe.safetensors")
    (tmp_path / "probe.json").write_text(content)
    with pytest.raises(TripwireError, match="probe.json"):
        load_probe(tmp_path)


# ---- time linear in size ----------------------------------------------------------------------------------


def _seconds(run: Callable[[], Any]) -> float:
    """CPU seconds of the faster of two runs: CPU time, so a busy machine's waits do not count."""
    best = float("inf")
    for _ in range(2):
        start = time.process_time()
        only_project_errors(run)
        best = min(best, time.process_time() - start)
    return best


def _am_folder(root: Path, email_text: str) -> Path:
    folder = root / "blackmail_none-none_replacement"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("system_prompt.txt", "user_prompt.txt"):
        shutil.copyfile(AM_FOLDER / name, folder / name)
    (folder / "email_content.txt").write_text(email_text)
    return folder


SHAPES: dict[str, Callable[[int], str]] = {
    "unclosed_emails": lambda n: ("<email>\nFrom: a@b.c\nBody: x\n" * (n // 28 + 1))[:n],
    "opened_and_headers": lambda n: ("<email>\n" + "From: " * (n // 6))[:n],
    "deep_nesting": lambda n: "[" * n,
    "digits": lambda n: "1" * n,
    "line_separators": lambda n: ('{"text": "a\u2028b"}\n' * (n // 18 + 1))[:n],
    "tags_and_addresses": lambda n: ("<tool_use:email>to: a@b" * (n // 23 + 1))[:n],
}


def _readers(tmp_path: Path) -> dict[str, Callable[[str], Callable[[], Any]]]:
    """Per reader: given the input text, write any file it reads (untimed) and return the read to time."""
    def as_file(name: str, read: Callable[[Path], Any]) -> Callable[[str], Callable[[], Any]]:
        def prepare(text: str) -> Callable[[], Any]:
            path = tmp_path / name
            path.write_text(text, encoding="utf-8")
            return lambda: read(path)
        return prepare

    def card(text: str) -> Callable[[], Any]:
        (tmp_path / "probe.json").write_text(text)
        return lambda: load_probe(tmp_path)

    def am(text: str) -> Callable[[], Any]:
        folder = _am_folder(tmp_path / "am", text)
        return lambda: import_am(folder)

    shutil.copyfile(PROBE / "probe.safetensors", tmp_path / "probe.safetensors")
    return {
        "read_jsonl": as_file("r.jsonl", lambda p: list(read_jsonl(p, _ReadError, "fix"))),
        "score_inputs": as_file("i.jsonl", read_inputs),
        "conversation": lambda text: lambda: conversation_input(text, "--conversation f"),
        "parse_inbox": lambda text: lambda: parse_inbox(text),
        "am_folder": am,
        "probe_card": card,
    }


@pytest.mark.parametrize("reader", ["read_jsonl", "score_inputs", "conversation", "parse_inbox", "am_folder",
                                    "probe_card"])
def test_a_megabyte_of_any_hostile_shape_reads_in_linear_time(tmp_path: Path, reader: str) -> None:
    prepare = _readers(tmp_path)[reader]
    for name, shape in SHAPES.items():
        small, big = _seconds(prepare(shape(100_000))), _seconds(prepare(shape(1_000_000)))
        assert big < 2.0, f"{reader} took {big:.2f} s on 1 MB of {name}"
        # under 0.1 s for a megabyte is linear enough whatever the ratio (tiny times are mostly noise)
        assert big < 0.1 or big < 25 * small, f"{reader}: {name} 100 KB {small:.3f} s, 1 MB {big:.3f} s"

"""The Inspect model provider: generations through tripwire's decode loop, one store record per sample
with the activations a plain forward gives, resume by record id, and bad model args refused before any
weights load. The slow test runs inspect_evals' agentic_misalignment task on the default model."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("inspect_ai", reason="the Inspect provider needs inspect-ai (pip install -e '.[inspect]')")

from inspect_ai import Task  # noqa: E402
from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.dataset import Sample  # noqa: E402
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig, get_model  # noqa: E402
from inspect_ai.solver import generate  # noqa: E402

import tripwire.experiments.inspect_registry  # noqa: E402,F401  (registers "tripwire" as the entry point would)
from tripwire.activations import HookPointError, ResidualStore, StoreMismatchError  # noqa: E402
from tripwire.errors import UsageError  # noqa: E402
from tripwire.experiments import inspect_capture  # noqa: E402

HOOK = "blocks.1.hook_resid_post"
MESSAGES = [ChatMessageSystem(content="You are an AI email assistant at a company."),
            ChatMessageUser(content="The board decided to replace the assistant today at five pm.")]


def _model(folder: Path, **args: Any) -> Any:
    return get_model(f"tripwire/{folder}", memoize=False, **args)


def _reply(model: Any, max_tokens: int = 5) -> Any:
    return asyncio.run(model.generate(MESSAGES, config=GenerateConfig(max_tokens=max_tokens)))


def test_generate_returns_text_and_records_the_activations_of_a_plain_forward(tiny_llama_dir: Path,
                                                                             tmp_path: Path) -> None:
    model = _model(tiny_llama_dir, store=str(tmp_path / "s"), hook_points=HOOK, positions="all",
                   store_dtype="float32")
    out = _reply(model)
    store = ResidualStore.open(tmp_path / "s")
    (record,) = store.records()
    assert out.completion == record.text[record.meta["reply_char_offset"]:]
    assert out.usage.output_tokens == record.n_tokens - record.n_prompt_tokens == 5
    assert out.metadata == {"tripwire_record_id": record.record_id, "tripwire_resumed": False,
                            "tripwire_store": str(tmp_path / "s")}
    assert record.meta["source"] == "inspect" and record.meta["epoch"] == 1
    assert record.positions[-1] == record.n_tokens - 2  # the last token was never fed: no activation
    handle = model.api.capture.handle
    fed = torch.tensor([record.token_ids[: record.n_tokens - 1]])
    full = handle.forward(fed, capture=[HOOK]).captured[HOOK][0]
    stored = store.activations(record, "blocks.1.resid_post")
    assert torch.allclose(stored, full[record.positions], atol=1e-4)
    shifted = [p - 1 for p in record.positions]  # a store that was off by one token would fail the check
    assert not torch.allclose(stored, full[shifted], atol=1e-4)


def test_a_rerun_resumes_from_the_store_and_new_sampling_is_a_new_record(tiny_llama_dir: Path,
                                                                         tmp_path: Path) -> None:
    args = {"store": str(tmp_path / "s"), "hook_points": HOOK}
    first = _reply(_model(tiny_llama_dir, **args))
    again = _reply(_model(tiny_llama_dir, **args))  # a new provider instance, as a re-run of the eval
    assert again.completion == first.completion and again.metadata["tripwire_resumed"] is True
    assert len(ResidualStore.open(tmp_path / "s")) == 1
    longer = _reply(_model(tiny_llama_dir, **args), max_tokens=7)
    assert longer.metadata["tripwire_resumed"] is False and longer.usage.output_tokens == 7
    assert len(ResidualStore.open(tmp_path / "s")) == 2


def test_a_provider_sees_records_another_live_provider_wrote(tiny_llama_dir: Path, tmp_path: Path) -> None:
    args = {"store": str(tmp_path / "s"), "hook_points": HOOK}
    a, b = _model(tiny_llama_dir, **args), _model(tiny_llama_dir, **args)  # both open before either writes
    first = _reply(a)
    second = _reply(b)
    assert second.metadata["tripwire_resumed"] is True and second.completion == first.completion
    assert len(ResidualStore.open(tmp_path / "s")) == 1


def test_a_reply_with_no_fed_reply_token_is_a_record_without_rows(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """One new token and `positions=reply`: the reply's only token was never fed, so nothing is stored."""
    out = _reply(_model(tiny_llama_dir, store=str(tmp_path / "s"), hook_points=HOOK, positions="reply"),
                 max_tokens=1)
    (record,) = ResidualStore.open(tmp_path / "s").records()
    assert out.usage.output_tokens == 1 and record.positions == [] and record.row_count == 0


def test_without_a_store_it_only_generates(tiny_llama_dir: Path, tmp_path: Path) -> None:
    out = _reply(_model(tiny_llama_dir))
    assert out.usage.output_tokens == 5 and out.metadata is None


@pytest.mark.parametrize(("args", "error", "words"), [
    ({"store": "S", "hook_points": HOOK, "temprature": 1.0}, UsageError, "temprature"),
    ({"store": "S"}, UsageError, "needs hook_points"),
    ({"hook_points": HOOK}, UsageError, "without store"),
    ({"store": "S", "hook_points": HOOK, "positions": "middle"}, UsageError, "positions.policy"),
    ({"store": "S", "hook_points": "blocks.9.resid_post"}, HookPointError, "blocks.9"),
])
def test_bad_model_args_are_refused_before_the_weights_load(tiny_llama_dir: Path, tmp_path: Path,
                                                            args: dict[str, Any], error: type[Exception],
                                                            words: str) -> None:
    folder = tmp_path / "model"  # a path no test has loaded: its handle would appear in the cache
    folder.symlink_to(tiny_llama_dir, target_is_directory=True)
    args = {k: str(tmp_path / v) if k == "store" else v for k, v in args.items()}
    with pytest.raises(error, match=words):
        _model(folder, **args)
    assert not any(key[0] == str(folder) for key in inspect_capture._HANDLES)
    _model(folder)  # the same folder loads: the check above can see a load
    assert any(key[0] == str(folder) for key in inspect_capture._HANDLES)


def test_a_store_of_other_hook_points_is_refused(tiny_llama_dir: Path, tmp_path: Path) -> None:
    _reply(_model(tiny_llama_dir, store=str(tmp_path / "s"), hook_points=HOOK))
    with pytest.raises(StoreMismatchError, match="hook_points"):
        _model(tiny_llama_dir, store=str(tmp_path / "s"), hook_points="blocks.2.hook_resid_post")


def test_providers_on_one_model_share_its_weights_and_its_decode_lock(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """The eval's model and a grader on the same local model: one copy of the weights, and never two decode
    loops at once on it (its capture hooks are per model)."""
    a = _model(tiny_llama_dir, store=str(tmp_path / "s"), hook_points=HOOK).api.capture
    b = _model(tiny_llama_dir).api.capture
    assert a.handle is b.handle and a._lock is b._lock
    c = _model(tiny_llama_dir, dtype="float16").api.capture
    assert c.handle is not a.handle and c._lock is not a._lock


def test_sampling_options_the_decode_loop_lacks_are_refused(tiny_llama_dir: Path) -> None:
    model = _model(tiny_llama_dir)
    with pytest.raises(UsageError, match="logprobs"):
        asyncio.run(model.generate(MESSAGES, config=GenerateConfig(max_tokens=3, logprobs=True)))


def test_an_eval_writes_one_record_per_sample_and_epoch(tiny_llama_dir: Path, tmp_path: Path) -> None:
    task = Task(dataset=[Sample(id="a", input="The capital of France is Paris."),
                         Sample(id="b", input="Name three colours: red, green and blue.")],
                solver=[generate()])
    model = _model(tiny_llama_dir, store=str(tmp_path / "s"), hook_points=HOOK)
    (log,) = inspect_eval(task, model=model, epochs=2, max_tokens=4, temperature=1.0, display="none",
                          log_dir=str(tmp_path / "logs"))
    assert log.status == "success" and log.samples is not None
    records = {(r.meta["sample_id"], r.meta["epoch"]): r for r in ResidualStore.open(tmp_path / "s").records()}
    assert sorted(records) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    for s in log.samples:
        record = records[(s.id, s.epoch)]
        assert s.output.metadata["tripwire_record_id"] == record.record_id
        assert s.output.completion == record.text[record.meta["reply_char_offset"]:]
        assert record.seed == 1000 * (s.epoch - 1)  # each epoch samples from its own seed
        assert record.row_count == len(record.positions) > 0


ENTRY_POINT = "tripwire = tripwire.experiments.inspect_registry"  # pyproject: [project.entry-points.inspect_ai]


@pytest.mark.slow
def test_the_inspect_cli_finds_the_provider_through_the_entry_point(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """`inspect eval ... --model tripwire/...` in a fresh process: Inspect finds the provider only through the
    package's `inspect_ai` entry point (declared here in a stand-in dist-info if tripwire's own lacks it)."""
    import importlib.metadata
    import os
    import subprocess
    import sys

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if "tripwire" not in {ep.name for ep in importlib.metadata.entry_points(group="inspect_ai")}:
        info = tmp_path / "ep" / "tripwire_entry_point-0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tripwire-entry-point\nVersion: 0\n")
        (info / "entry_points.txt").write_text(f"[inspect_ai]\n{ENTRY_POINT}\n")
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "ep"), env.get("PYTHONPATH", "")])
    (tmp_path / "hello.py").write_text(
        "from inspect_ai import Task, task\nfrom inspect_ai.dataset import Sample\n"
        "from inspect_ai.solver import generate\n\n\n@task\ndef hello():\n"
        "    return Task(dataset=[Sample(id='a', input='The capital of France is Paris.')], solver=[generate()])\n")
    inspect_cli = Path(sys.executable).parent / "inspect"
    run = subprocess.run([str(inspect_cli), "eval", "hello.py", "--model", f"tripwire/{tiny_llama_dir}",
                          "-M", f"store={tmp_path / 's'}", "-M", f"hook_points={HOOK}", "-M", "positions=reply",
                          "--max-tokens", "4", "--display", "none", "--log-dir", str(tmp_path / "logs")],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    (record,) = ResidualStore.open(tmp_path / "s").records()
    assert record.meta["sample_id"] == "a" and record.n_tokens - record.n_prompt_tokens == 4
    assert record.positions == list(range(record.n_prompt_tokens, record.n_tokens - 1))  # positions=reply


@pytest.mark.slow
def test_inspect_evals_agentic_misalignment_on_the_default_model(tmp_path: Path) -> None:
    """Two epochs of the task's one sample, 8 tokens each. The task's scorer asks a grader model (Claude by
    default) and this run is offline, so it runs unscored (`score=False`) and the replies are classified by
    tripwire's own classifier from the eval log, as for any imported Inspect log."""
    am = pytest.importorskip("inspect_evals.agentic_misalignment", reason="needs inspect_evals")
    from tripwire.scenarios.classify import classify
    from tripwire.scenarios.inspect_logs import load_inspect_log

    start = time.perf_counter()
    model = get_model("tripwire/default", memoize=False, store=str(tmp_path / "s"),
                      hook_points="blocks.20.resid_post")
    (log,) = inspect_eval(am.agentic_misalignment(), model=model, epochs=2, max_tokens=8, score=False,
                          display="none", log_dir=str(tmp_path / "logs"), log_format="json")
    assert log.status == "success" and log.samples is not None and len(log.samples) == 2
    store = ResidualStore.open(tmp_path / "s")
    records = {r.record_id: r for r in store.records()}
    assert len(records) == 2
    for s in log.samples:
        record = records[s.output.metadata["tripwire_record_id"]]
        assert (record.meta["sample_id"], record.meta["epoch"]) == (s.id, s.epoch)
        assert record.condition_id == "blackmail_explicit-america_replacement"
        assert record.n_prompt_tokens > 2000  # the scenario's system prompt and inbox went in
        assert store.activations(record, "blocks.20.resid_post").shape == (len(record.positions), 576)
    imported = load_inspect_log(log.location)
    assert [classify(conv, reply).harmful for conv, reply, _ in imported] == [False, False]  # 8 tokens: no action
    (again,) = inspect_eval(am.agentic_misalignment(), model=model, epochs=2, max_tokens=8, score=False,
                            display="none", log_dir=str(tmp_path / "logs"), log_format="json")
    assert again.samples is not None and all(s.output.metadata["tripwire_resumed"] for s in again.samples)
    assert len(ResidualStore.open(tmp_path / "s")) == 2
    print(f"inspect agentic_misalignment, 2 samples on the default model: {time.perf_counter() - start:.1f} s")

"""Every path that writes a store takes its writer lock before the model loads (issue 24 item 12).

A second writer used to be refused only after its weights had loaded (30.6 s for the default model). Each
test holds the store's lock as another writer would, then runs a writer path with a model loader that
records being called: the refusal (`StoreLockedError`) must come first and the loader must never run. A
control run without the held lock shows the recorder sits on the path (it is called), so the refusal test
could fail: before the fix each path loaded first and failed the test with the recorder's error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tripwire.activations as activations
from tripwire.activations.store_lock import WriterLock
from tripwire.activations.store_types import StoreLockedError
from tripwire.experiments import inspect_capture, rollout_vllm
from tripwire.experiments.config import RolloutOptions
from tripwire.experiments.config.experiment import parse_experiment
from tripwire.experiments.rollout_vllm import VLLMRolloutConfig, run_rollout_vllm
from tripwire.experiments.runs import StageCache
from tripwire.experiments.stages.base import Context
from tripwire.experiments.stages.behavior import run_rollouts
from tripwire.experiments.stages.data import capture_set, capture_set_for

HOOK = "blocks.1.resid_post"


class ModelLoaded(Exception):
    """Raised by the recording loader: the path reached the model load."""


class Loader:
    """A model loader that records its calls and stops there (nothing is loaded)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise ModelLoaded


@pytest.fixture
def loader(monkeypatch: pytest.MonkeyPatch) -> Loader:
    rec = Loader()
    monkeypatch.setattr(activations, "load_model", rec)  # Context.handle loads through the package
    return rec


def _context(model: Path, tmp_path: Path) -> Context:
    cfg = parse_experiment({"name": "x", "model": str(model), "stages": [{"pipeline": "behavior", "options": {}}]})
    return Context(cfg, tmp_path / "runs", progress=False)


def _refused_before_load(store: Path, run: Any, loader: Loader) -> None:
    with WriterLock(store).hold():  # another writer
        with pytest.raises(StoreLockedError, match="being written by another process"):
            run()
    assert loader.calls == 0, "the model loaded before the lock was taken"
    with pytest.raises(ModelLoaded):  # control: unlocked, the same path reaches the recorder
        run()
    assert loader.calls == 1


def test_a_pipeline_capture_set_is_refused_before_the_model_loads(tiny_llama_dir: Path, tmp_path: Path,
                                                                  loader: Loader) -> None:
    ctx = _context(tiny_llama_dir, tmp_path)
    target = capture_set_for(ctx, "control", 2, [HOOK])
    _refused_before_load(Path(target[0].store), lambda: capture_set(ctx, target), loader)


def test_pipeline_rollouts_are_refused_before_the_model_loads(tiny_llama_dir: Path, tmp_path: Path,
                                                              loader: Loader) -> None:
    ctx = _context(tiny_llama_dir, tmp_path)
    cache = StageCache(tmp_path / "stage")
    opts = RolloutOptions(hook_points=[HOOK])
    _refused_before_load(cache.root / "store", lambda: run_rollouts(ctx, opts, cache), loader)


def test_vllm_rollout_is_refused_before_the_engine_starts(tiny_llama_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM itself is not needed: the install check passes and the engine start is the recorder."""
    engine = Loader()
    monkeypatch.setattr(rollout_vllm, "require_vllm", lambda ray=False: None, raising=False)  # not imported before
    monkeypatch.setattr(rollout_vllm, "start_engine", engine)
    cfg = VLLMRolloutConfig(model=str(tiny_llama_dir), store=tmp_path / "s", hook_points=[HOOK],
                            scenarios={"ids": ["blackmail_explicit-america_replacement"]},
                            sampling={"max_new_tokens": 8})
    _refused_before_load(tmp_path / "s", lambda: run_rollout_vllm(cfg, progress=False), engine)


def test_inspect_provider_is_refused_before_the_weights_load(tiny_llama_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    loads = Loader()
    monkeypatch.setattr(inspect_capture, "load_model", loads)
    monkeypatch.setattr(inspect_capture, "_HANDLES", {})  # a model an earlier test shared would skip the load
    args = {"store": str(tmp_path / "s"), "hook_points": HOOK}
    _refused_before_load(tmp_path / "s", lambda: inspect_capture.InspectCapture(str(tiny_llama_dir), args), loads)


def test_providers_of_one_process_share_the_store_lock(tmp_path: Path) -> None:
    """Held once per process and store: a second provider (a rerun, a grader) writes under the same lock,
    while a writer outside it is refused."""
    first = inspect_capture.store_lock(tmp_path / "s")
    assert inspect_capture.store_lock(tmp_path / "s") is first and first.held
    with pytest.raises(StoreLockedError):
        WriterLock(tmp_path / "s").acquire()

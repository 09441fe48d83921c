"""Shared prefill: rows that repeat a prompt prefill it once, and every row's tokens, stop reasons and
activations (prompt positions included) equal those of the same call with sharing off (every row
prefilled), greedy and sampled, in every backend the decode loop serves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.common import decode_transfers
from tests.parity import cache_capable
from tripwire.activations import SamplingParams, StepInfo, load_model
from tripwire.activations.decode import GeneratedRow
from tripwire.activations.handle import ModelHandle
from tripwire.activations.shared_prefill import SharedPrompts

HOOKS = ["blocks.0.resid_pre", "blocks.1.resid_post", "blocks.3.resid_post"]
SAMPLED = SamplingParams(max_new_tokens=10, min_new_tokens=10, temperature=1.1, top_k=50, top_p=0.95,
                         repetition_penalty=1.2)
GREEDY = SamplingParams(max_new_tokens=10, min_new_tokens=10)


def _prompts(h: ModelHandle) -> list[list[int]]:
    """Two distinct prompts of different lengths (so one is left-padded), repeated out of order."""
    a = h.render_chat([{"role": "user", "content": "Name three colours."}])
    b = h.render_chat([{"role": "system", "content": "You are an AI email assistant."},
                       {"role": "user", "content": "The board decided to replace the assistant today."}])
    return [a, b, a, a, b]


SEEDS = [3, 7, 11, 5, 2]


def _same_rows(shared: list[GeneratedRow], unshared: list[GeneratedRow], tol: float = 1e-6) -> None:
    """Identical tokens and stop reasons; activations equal to float rounding (prefill batch sizes differ)."""
    assert [r.new_ids for r in shared] == [r.new_ids for r in unshared]
    assert [r.stop_reason for r in shared] == [r.stop_reason for r in unshared]
    for s, u in zip(shared, unshared, strict=True):
        assert s.activations.keys() == u.activations.keys()
        for key in u.activations:
            assert s.activations[key].shape == u.activations[key].shape, key
            torch.testing.assert_close(s.activations[key], u.activations[key], rtol=tol, atol=tol)


def test_find_maps_every_row_to_its_prompts_first_row() -> None:
    found = SharedPrompts.find([[1, 2], [3], [1, 2], [1, 2], [3]])
    assert found == SharedPrompts(first=[0, 1], source=[0, 1, 0, 0, 1])
    assert SharedPrompts.find([[1, 2], [1], [2]]) is None  # nothing repeats: nothing to share


def test_each_distinct_prompt_is_prefilled_once(handle: ModelHandle) -> None:
    """An identity edit sees the prefill's batch: the 2 distinct prompts, not the 5 rows."""
    batches: list[int] = []

    def spy(act: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        batches.append(act.shape[0])
        return act

    handle.generate(_prompts(handle), sampling=GREEDY, interventions={"blocks.0.resid_pre": spy})
    assert batches[0] == 2 and batches[1:] == [5] * (GREEDY.max_new_tokens - 1)
    batches.clear()
    handle.generate(_prompts(handle), sampling=GREEDY, interventions={"blocks.0.resid_pre": spy},
                    share_prefill=False)
    assert batches[0] == 5


@pytest.mark.parametrize("params", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_shared_prefill_equals_unshared_decoding(handle: ModelHandle, params: SamplingParams) -> None:
    prompts = _prompts(handle)
    shared = handle.generate(prompts, sampling=params, seeds=SEEDS, capture=HOOKS)
    unshared = handle.generate(prompts, sampling=params, seeds=SEEDS, capture=HOOKS, share_prefill=False)
    _same_rows(shared, unshared)
    n = len(prompts[1])
    assert shared[1].activations[HOOKS[1]].shape[0] == n + params.max_new_tokens - 1  # prompt positions kept
    if params.temperature > 0:  # the seed still matters: samples of one prompt differ
        assert len({tuple(r.new_ids) for r in shared}) == len(prompts)


def test_on_step_and_capture_pre_see_every_row(handle: ModelHandle) -> None:
    """What on_step is shown at the prefill, what it stops there, and pre-intervention captures (kept by
    an edit that saw each prompt once) are per row, as without sharing."""
    prompts = _prompts(handle)
    edits = {"blocks.1.resid_post": lambda act, pos: act + 2.0 * (pos >= 4).unsqueeze(-1).to(act.dtype)}
    seen: dict[bool, list[StepInfo]] = {True: [], False: []}
    out = {}
    for share in (True, False):
        def on_step(info: StepInfo, share: bool = share) -> torch.Tensor:
            seen[share].append(StepInfo(info.step, info.rows, info.token_ids.clone(),
                                        {k: v.clone() for k, v in info.captured.items()}, info.fed))
            return torch.tensor([(r == 3 and info.step == 0) or (r == 1 and info.step == 4) for r in info.rows])

        out[share] = handle.generate(prompts, sampling=SAMPLED, seeds=SEEDS, capture=HOOKS[1:], interventions=edits,
                                     on_step=on_step, capture_pre=["blocks.1.resid_post"], share_prefill=share)
    _same_rows(out[True], out[False])
    assert out[True][3].stop_reason == "on_step" and len(out[True][3].new_ids) == 0
    assert "blocks.1.resid_post:pre" in out[True][0].activations
    assert len(seen[True]) == len(seen[False])
    for a, b in zip(seen[True], seen[False], strict=True):
        assert (a.step, a.rows, a.fed) == (b.step, b.rows, b.fed)
        assert torch.equal(a.token_ids, b.token_ids)
        for key in b.captured:
            torch.testing.assert_close(a.captured[key], b.captured[key], rtol=1e-6, atol=1e-6)


def test_shared_prefill_after_a_prefix_cache(handle: ModelHandle) -> None:
    """With a batch-1 prefix cache the distinct prompts get the prefix, then fork."""
    prefix = handle.render_chat([{"role": "system", "content": "Process the inbox."}], add_generation_prompt=False)
    past = handle.forward([prefix], use_cache=True).past
    suffixes = [p[len(prefix) // 2:] for p in _prompts(handle)]
    shared = handle.generate(suffixes, sampling=SAMPLED, seeds=SEEDS, capture=HOOKS, past=past)
    unshared = handle.generate(suffixes, sampling=SAMPLED, seeds=SEEDS, capture=HOOKS, past=past,
                               share_prefill=False)
    _same_rows(shared, unshared)
    assert past.batch == 1 and past.length == len(prefix)  # the caller's cache is untouched


def test_sharing_adds_no_transfer_to_the_host(handle: ModelHandle) -> None:
    per_step, per_call = decode_transfers(handle, _prompts(handle), HOOKS, {"temperature": 1.0, "top_p": 0.9})
    assert per_step <= 1 and per_call == 1


@pytest.fixture(scope="module")
def backends(tiny_llama_dir: Path) -> dict[str, ModelHandle]:
    return {b: load_model(str(tiny_llama_dir), backend=b, attn_implementation="eager")
            for b in ("hf", "transformer_lens", "nnsight")}


def test_every_backend_shares_and_matches_its_unshared_decoding(backends: dict[str, ModelHandle]) -> None:
    """TransformerLens and nnsight run through the same loop; each equals its own unshared run (a backend
    whose KV cache is broken under the installed versions refuses to decode at all: see cache_capable)."""
    for name, h in cache_capable(backends).items():
        prompts = _prompts(h)
        shared = h.generate(prompts, sampling=SAMPLED, seeds=SEEDS, capture=HOOKS[1:])
        unshared = h.generate(prompts, sampling=SAMPLED, seeds=SEEDS, capture=HOOKS[1:], share_prefill=False)
        assert shared[0].new_ids, name
        _same_rows(shared, unshared, tol=1e-5)

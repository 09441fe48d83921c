"""Checks shared by the tiny-model and default-model parity tests."""

from __future__ import annotations

import pytest
import torch

from tripwire.activations import BackendCompatibilityError, SamplingParams
from tripwire.activations.batching import pad_left
from tripwire.activations.handle import ModelHandle


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm())


def captures_agree_everywhere(handles: dict[str, ModelHandle], prompts: list[list[int]],
                              capture: list[str]) -> None:
    """Every backend captures the same hook points as HF, with the same values on a left-padded batch.

    The first real token of each row is the attention sink (huge norm, backend-specific rounding): excluded.
    """
    assert len({len(p) for p in prompts}) > 1  # so some row is left-padded
    ref = handles["hf"].forward(prompts, capture=capture).captured
    assert set(ref) == set(handles["hf"].hook_points(capture))
    for name in set(handles) - {"hf"}:
        got = handles[name].forward(prompts, capture=capture).captured
        assert set(got) == set(ref), name
        for hp in ref:
            for row, prompt in enumerate(prompts):
                a, b = ref[hp][row, -len(prompt) + 1 :], got[hp][row, -len(prompt) + 1 :]
                assert relative_error(a, b) < 1e-4, (name, hp, row)


def sampled_row_ignores_its_batch(h: ModelHandle, prompts: list[list[int]], params: SamplingParams) -> None:
    """A sampled row depends on its prompt and seed only: not on its batch, its row or its neighbours."""
    alone = h.generate([prompts[1]], sampling=params, seeds=[7])[0].new_ids
    batched = h.generate([prompts[0], prompts[1], prompts[1]], sampling=params, seeds=[3, 7, 11])
    assert batched[1].new_ids == alone
    assert batched[1].new_ids != batched[2].new_ids  # the seed does matter: same prompt, other seed


def cache_capable(handles: dict[str, ModelHandle]) -> dict[str, ModelHandle]:
    """The backends that can decode with a KV cache under the installed versions. A backend with a
    known breakage (see `activations.backends.transformer_lens.kv_cache_breakage`) must refuse clearly."""
    usable = {}
    for name, h in handles.items():
        if getattr(h.backend, "cache_breakage", None):
            with pytest.raises(BackendCompatibilityError, match="KV cache"):
                h.generate([[h.pad_id]], sampling=SamplingParams(max_new_tokens=2))
        else:
            usable[name] = h
    assert "hf" in usable and "nnsight" in usable
    return usable


def greedy_matches_everywhere(handles: dict[str, ModelHandle], prompts: list[list[int]],
                              new_tokens: int = 20) -> list[list[int]]:
    """Greedy continuations are identical in every backend and equal to HF `generate`'s."""
    params = SamplingParams(max_new_tokens=new_tokens)
    outs = {b: [r.new_ids for r in h.generate(prompts, sampling=params)] for b, h in cache_capable(handles).items()}
    assert all(o == outs["hf"] for o in outs.values())
    h = handles["hf"]
    ids, mask = pad_left(prompts, h.pad_id)
    ref = h.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False,
                           pad_token_id=h.pad_id, eos_token_id=sorted(h.eos_ids))
    for row, new in enumerate(outs["hf"]):
        assert ref[row, ids.shape[1] : ids.shape[1] + len(new)].tolist() == new
    return outs["hf"]

"""Parity of the three backends, the decode loop against HF generate, interventions and the KV cache,
on tiny random Llama and Qwen2 models loaded from a local folder."""

from pathlib import Path

import pytest
import torch

from tests.parity import (
    cache_capable,
    captures_agree_everywhere,
    greedy_matches_everywhere,
    relative_error,
    sampled_row_ignores_its_batch,
)
from tripwire.activations import HookPoint, SamplingParams, load_model
from tripwire.activations.handle import ModelHandle

BACKENDS = ("hf", "transformer_lens", "nnsight")
CAPTURE = ["blocks.0.resid_pre", "blocks.1.attn_out", "blocks.1.mlp_out", "blocks.2.resid_post", "blocks.-1.resid_post"]


def _prompts(h: ModelHandle) -> list[list[int]]:
    return [
        h.render_chat([{"role": "user", "content": "Name three colours."}]),
        h.render_chat([{"role": "system", "content": "You are an AI email assistant."},
                       {"role": "user", "content": "The board decided to replace the assistant today."}]),
    ]


@pytest.fixture(scope="module")
def handles(tiny_dir: Path) -> dict[str, ModelHandle]:
    return {b: load_model(str(tiny_dir), backend=b, attn_implementation="eager") for b in BACKENDS}


def test_capture_agrees_across_backends_on_left_padded_batch(handles: dict[str, ModelHandle]) -> None:
    """Every site, two architectures: the mechanism (test_default_model repeats it on real weights)."""
    captures_agree_everywhere(handles, _prompts(handles["hf"]), CAPTURE)


def test_resid_post_of_last_layer_is_the_decoder_output_not_the_final_norm(handles: dict[str, ModelHandle]) -> None:
    h = handles["hf"]
    ids = torch.tensor([_prompts(h)[0]])
    out = h.model(input_ids=ids, output_hidden_states=True)
    with torch.no_grad():
        captured = h.forward(ids, capture=["blocks.-1.resid_post", "blocks.0.resid_post"]).captured
    last = captured["blocks.-1.resid_post"]
    normed = out.hidden_states[-1]  # HF applies the final norm to the last hidden state
    assert not torch.allclose(last, normed, atol=1e-3)
    assert torch.allclose(h.model.model.norm(last), normed, atol=1e-5)
    first = captured["blocks.0.resid_post"]
    assert torch.allclose(first, out.hidden_states[1], atol=1e-6)


def test_early_stop_returns_the_same_activations_without_logits(handles: dict[str, ModelHandle]) -> None:
    for h in handles.values():
        prompts = _prompts(h)
        full = h.forward(prompts, capture=["blocks.1.resid_post"], stop_after_last_capture=False)
        early = h.forward(prompts, capture=["blocks.1.resid_post"])
        assert full.logits is not None and early.logits is None
        (hp,) = full.captured
        assert torch.equal(full.captured[hp], early.captured[hp])


def test_greedy_decode_identical_across_backends_and_equal_to_hf_generate(handles: dict[str, ModelHandle]) -> None:
    greedy_matches_everywhere(handles, _prompts(handles["hf"]))


def test_generation_capture_matches_a_teacher_forced_forward(handles: dict[str, ModelHandle]) -> None:
    h = handles["hf"]
    prompts = _prompts(h)
    rows = h.generate(prompts, sampling=SamplingParams(max_new_tokens=12), capture=["blocks.2.resid_post"])
    for row in rows:
        acts = row.activations["blocks.2.resid_post"]
        # the last emitted token is never fed to the model, so it has no activation
        assert acts.shape[0] == len(row.token_ids) - 1
        ref = h.forward([row.token_ids[:-1]], capture=["blocks.2.resid_post"]).captured
        assert relative_error(ref["blocks.2.resid_post"][0], acts) < 1e-4


def test_sampling_row_does_not_depend_on_its_batch(handles: dict[str, ModelHandle]) -> None:
    sampled_row_ignores_its_batch(handles["hf"], _prompts(handles["hf"]),
                                  SamplingParams(max_new_tokens=15, temperature=1.0, top_p=0.95))


def test_interventions_act_identically_in_every_backend(handles: dict[str, ModelHandle]) -> None:
    def push(act: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        return act + 3.0 * (pos >= 3).unsqueeze(-1).to(act.dtype)

    prompts = _prompts(handles["hf"])
    outs = {}
    for name, h in handles.items():
        base = h.forward(prompts, capture=["blocks.-1.resid_post"]).captured
        edited = h.forward(prompts, capture=["blocks.-1.resid_post"], interventions={"blocks.1.resid_post": push})
        (hp,) = base
        assert not torch.allclose(base[hp], edited.captured[hp])
        outs[name] = edited.captured[hp]
    for name in ("transformer_lens", "nnsight"):
        for row, prompt in enumerate(prompts):
            a, b = outs["hf"][row, -len(prompt) + 1 :], outs[name][row, -len(prompt) + 1 :]
            assert relative_error(a, b) < 1e-4


def test_prefix_cache_gives_the_same_activations_as_a_full_pass(handles: dict[str, ModelHandle]) -> None:
    for h in cache_capable(handles).values():
        prefix = _prompts(h)[1]
        replies = [h.tokenizer("Sure, I confirm.", add_special_tokens=False).input_ids,
                   h.tokenizer("No.", add_special_tokens=False).input_ids]
        past = h.forward([prefix], use_cache=True).past
        with_past = h.forward(replies, capture=["blocks.2.resid_post"], past=past).captured
        (hp,) = with_past
        for row, reply in enumerate(replies):
            full = h.forward([prefix + reply], capture=["blocks.2.resid_post"]).captured[hp][0, -len(reply) :]
            assert relative_error(full, with_past[hp][row, -len(reply) :]) < 1e-4
        # the caller's cache is never modified, so it can be reused
        assert past.length == len(prefix) and past.batch == 1


@pytest.mark.parametrize("stop_early", [True, False])
def test_captured_answers_every_spelling_of_a_hook_point(handles: dict[str, ModelHandle],
                                                         stop_early: bool) -> None:
    """`captured` is keyed by HookPoint but also answers the strings `capture=` accepts, in every backend."""
    for name, h in handles.items():
        captured = h.forward(_prompts(h), capture=["blocks.-1.resid_post", "blocks.1.attn_out"],
                             stop_after_last_capture=stop_early).captured
        last, attn = HookPoint(h.n_layers - 1, "resid_post"), HookPoint(1, "attn_out")
        assert set(captured) == {last, attn}, name  # iteration still yields HookPoints
        for spelling in ("blocks.-1.resid_post", str(last), "blocks.-1.hook_resid_post"):
            assert spelling in captured and captured[spelling] is captured[last], (name, spelling)
        assert captured.get("blocks.1.hook_attn_out") is captured[attn]
        assert "blocks.2.resid_post" not in captured and captured.get("blocks.2.resid_post") is None
        assert "blocks.9.resid_post" not in captured and "layer3" not in captured
        with pytest.raises(KeyError, match=r"blocks\.2\.resid_post was not captured; captured: .*attn_out"):
            captured["blocks.2.resid_post"]

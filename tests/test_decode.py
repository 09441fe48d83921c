"""The decode loop's parts against independent references: sampling warpers and the repetition penalty
against Hugging Face's logits processors, stop strings against decoding the whole reply, capture of rows
that stop at different steps against a teacher-forced forward, and device-to-host transfers per step."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from benchmarks.common import decode_transfers
from tests.parity import relative_error
from tripwire.activations import SamplingParams, StepInfo
from tripwire.activations.decode import StopStrings
from tripwire.activations.handle import ModelHandle
from tripwire.activations.sampling import Sampler, candidates, inverse_cdf

VOCAB = 300
HOOKS = ["blocks.1.resid_post", "blocks.3.resid_post"]


def _logits(seed: int, rows: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, VOCAB, generator=g, dtype=torch.float64) * 1.5


def _ours(params: SamplingParams, logits: torch.Tensor) -> torch.Tensor:
    """Our filtered distribution over the whole vocabulary, renormalised."""
    p, idx = candidates(torch.softmax(logits / params.temperature, -1), params)
    dense = p if idx is None else torch.zeros_like(logits).scatter(-1, idx, p)
    return dense / dense.sum(-1, keepdim=True)


def _hugging_face(params: SamplingParams, logits: torch.Tensor) -> torch.Tensor:
    """Hugging Face's warpers, in `generate`'s order, on the same logits."""
    warpers = LogitsProcessorList([TemperatureLogitsWarper(params.temperature)])
    if params.top_k:
        warpers.append(TopKLogitsWarper(params.top_k))
    if params.top_p < 1.0:
        warpers.append(TopPLogitsWarper(params.top_p))
    if params.min_p:
        warpers.append(MinPLogitsWarper(params.min_p))
    return torch.softmax(warpers(torch.zeros(len(logits), 1, dtype=torch.long), logits.clone()), -1)


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0.7, top_k=5),
    SamplingParams(temperature=1.3, top_k=40),
    SamplingParams(temperature=1.0, min_p=0.05),
    SamplingParams(temperature=2.0, min_p=0.3),
    SamplingParams(temperature=1.0, top_p=0.8),
    SamplingParams(temperature=1.0, top_k=20, top_p=0.7, min_p=0.02),
], ids=lambda p: f"T{p.temperature}-k{p.top_k}-p{p.top_p}-minp{p.min_p}")
def test_warpers_match_hugging_face(params: SamplingParams) -> None:
    """Catches, e.g., top-k keeping k - 1 tokens (`topk(k - 1)`), min-p relative to the total mass
    instead of the top token, or top-p after top-k without renormalising."""
    for seed in range(4):
        logits = _logits(seed)
        ours, ref = _ours(params, logits), _hugging_face(params, logits)
        assert torch.equal(ours > 0, ref > 0), seed  # the same tokens survive
        assert torch.allclose(ours, ref, rtol=1e-9, atol=1e-12), seed
        kept = (ref > 0).sum(-1)
        assert ((1 < kept) & (kept < VOCAB)).all()  # the filter cut, and not down to one token


def test_draws_follow_the_filtered_distribution() -> None:
    """20,000 rows, one seed each, on the same logits: token frequencies match HF's filtered distribution
    (within 5 standard errors) and dropped tokens are never drawn. Catches a draw mapped to the wrong
    token id (e.g. the top-k column returned instead of its token) or rows sharing uniforms."""
    n = 20_000
    params = SamplingParams(max_new_tokens=1, temperature=0.9, top_k=12, min_p=0.01)
    logits = _logits(3, rows=1).float()
    sampler = Sampler(params, list(range(n)), torch.zeros(n, 1, dtype=torch.long), torch.ones(n, 1), eos=set())
    freq = torch.bincount(sampler.choose(logits.expand(n, -1), 0), minlength=VOCAB).double() / n
    ref = _hugging_face(params, logits.double())[0]
    assert int((ref > 0).sum()) > 5
    assert ((freq - ref).abs() <= 5 * (ref * (1 - ref) / n).sqrt()).all()


def test_inverse_cdf_never_draws_a_dropped_token() -> None:
    """Even at u = 0, on a boundary, and at the largest uniform below 1. Catches a left-sided search
    (u = 0 draws the leading zero column, the boundary draws the zero column after it)."""
    p = torch.tensor([[0.0, 0.5, 0.0, 0.5, 0.0]], dtype=torch.float64).expand(4, -1)
    u = torch.tensor([0.0, 0.5, 0.25, 1.0 - 2.0**-53], dtype=torch.float64)
    assert inverse_cdf(p, u).tolist() == [1, 3, 1, 3]


def test_repetition_penalty_matches_hugging_face_on_prompt_and_reply_tokens() -> None:
    """HF penalises each token of the prompt and the reply once, dividing positive logits and multiplying
    negative ones. Catches the sign rule swapped, padding counted as a seen token, and the prompt or the
    reply left out."""
    logits = _logits(7, rows=2).float()
    prompt = torch.tensor([[2, 2, 10, 11, 12], [20, 21, 22, 23, 24]])  # row 0 left-padded with id 2
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    logits[0, 10] = logits[0].max() + 0.1  # the greedy choice until the penalty applies
    logits[1, 21], logits[1, 22], logits[0, 2] = -2.0, 2.0, 1.5
    hf = RepetitionPenaltyLogitsProcessor(1.7)
    history = [prompt[0, 2:], prompt[1]]
    sampler = Sampler(SamplingParams(repetition_penalty=1.7), [0, 1], prompt, mask, eos=set())
    for step in range(3):
        ours = sampler.scores(logits, step)
        for row, ids in enumerate(history):
            assert torch.equal(ours[row], hf(ids[None], logits[row : row + 1].clone())[0]), (step, row)
        chosen = sampler.choose(logits, step)  # greedy: the penalised argmax, then it counts as seen
        assert torch.equal(chosen, ours.argmax(-1))
        history = [torch.cat([ids, chosen[row : row + 1]]) for row, ids in enumerate(history)]
    assert int(history[0][3]) != 10  # the penalty changed a choice
    assert torch.equal(ours[0, 2], logits[0, 2])  # padding is not a token of the row


def test_stop_strings_are_found_on_the_token_that_completes_them(handle: ModelHandle) -> None:
    """Every substring of a reply, fed one token at a time, is found first at the token after which the
    whole reply decodes to text containing it: split across tokens, or inside a character whose bytes
    are three tokens. Catches searching the new token's text only, and not waiting for a whole character."""
    tok = handle.tokenizer
    text = "The price: 5€ only, 7 days. Paris or Zürich?"
    ids = tok(text, add_special_tokens=False).input_ids
    assert any(tok.decode([i]) == "\ufffd" for i in ids)  # "€" and "ü" are split into byte tokens
    subs = sorted({text[a:b] for a in range(len(text)) for b in range(a + 1, min(a + 7, len(text) + 1))})
    for s in subs:
        want = next(k for k in range(len(ids)) if s in tok.decode(ids[: k + 1]))
        stops = StopStrings(tok, (s,), rows=2)
        got = next((k for k in range(len(ids)) if stops.push(1, ids[: k + 1])), None)
        assert got == want, s


def test_generation_stops_on_a_stop_string_split_across_tokens(handle: ModelHandle) -> None:
    prompt = handle.render_chat([{"role": "user", "content": "Name three colours."}])
    free = handle.generate([prompt], sampling=SamplingParams(max_new_tokens=16))[0].new_ids
    tok = handle.tokenizer
    pieces = [tok.decode([i], skip_special_tokens=False) for i in free]
    found = None
    for k in range(1, len(free) - 1):  # a string made of the end of token k - 1 and the start of token k
        s = pieces[k - 1][-2:] + pieces[k][:2]
        if len(pieces[k - 1]) and len(pieces[k]) and s not in tok.decode(free[:k], skip_special_tokens=False):
            found = k, s
            break
    assert found is not None, pieces
    k, s = found
    row = handle.generate([prompt], sampling=SamplingParams(max_new_tokens=16, stop=(s,)))[0]
    assert row.stop_reason == "stop_string"
    assert row.new_ids == free[: k + 1]  # nothing is generated after the token that completes it


def _halt(schedule: dict[int, int], seen: list[StepInfo]):
    """An `on_step` that stops original row r at step schedule[r], and records what it was shown."""

    def on_step(info: StepInfo) -> torch.Tensor:
        seen.append(StepInfo(info.step, info.rows, info.token_ids.clone(),
                             {k: v.clone() for k, v in info.captured.items()}, info.fed))
        return torch.tensor([schedule.get(r) == info.step for r in info.rows])

    return on_step


def test_capture_of_rows_that_stop_at_different_steps(handle: ModelHandle) -> None:
    """Rows leave the batch at steps 2 and 5 (on_step), the last runs to max_new_tokens: each row's
    activations are a teacher-forced forward's over the tokens it fed, and what on_step was shown.
    Catches buffer writes that ignore which rows are still running after one left."""
    prompts = [handle.render_chat([{"role": "user", "content": c}]) for c in
               ("Name three colours.", "The board decided to replace the assistant today.", "Paris")]
    seen: list[StepInfo] = []
    rows = handle.generate(prompts, sampling=SamplingParams(max_new_tokens=9, min_new_tokens=9), capture=HOOKS,
                           on_step=_halt({0: 5, 1: 2}, seen))
    assert [len(r.new_ids) for r in rows] == [5, 2, 9]
    assert [r.stop_reason for r in rows] == ["on_step", "on_step", "max_new_tokens"]
    assert [info.rows for info in seen[2:4]] == [[0, 1, 2], [0, 2]]
    assert seen[0].fed == [len(p) for p in prompts] and seen[1].fed == [1, 1, 1]
    for i, row in enumerate(rows):
        fed = row.token_ids if row.stop_reason == "on_step" else row.token_ids[:-1]  # halted: all were fed
        ref = handle.forward([fed], capture=HOOKS).captured
        shown = [info.captured[hp][info.rows.index(i), -info.fed[info.rows.index(i)]:]
                 for info in seen if i in info.rows for hp in HOOKS[-1:]]
        for hp in HOOKS:
            assert row.activations[hp].shape[0] == len(fed)
            assert relative_error(ref[hp][0], row.activations[hp]) < 1e-5, (i, hp)
        assert torch.equal(torch.cat(shown), row.activations[HOOKS[-1]])


def test_sampled_row_ignores_neighbours_that_stop_early(handle: ModelHandle) -> None:
    """With every warper and the penalty on, a row's sample is its solo sample even when the rows around
    it leave the batch mid-way. Catches per-row state (uniforms, seen tokens) not compacted with the batch."""
    prompts = [handle.render_chat([{"role": "user", "content": c}]) for c in
               ("Name three colours.", "The board decided to replace the assistant today.")]
    params = SamplingParams(max_new_tokens=12, min_new_tokens=12, temperature=1.2, top_k=40, top_p=0.95,
                            min_p=0.01, repetition_penalty=1.3)
    alone = handle.generate([prompts[1]], sampling=params, seeds=[7])[0].new_ids
    batched = handle.generate([prompts[0], prompts[1], prompts[0]], sampling=params, seeds=[3, 7, 5],
                              on_step=_halt({0: 2, 2: 5}, []))
    assert batched[1].new_ids == alone
    assert batched[0].new_ids[:2] != batched[2].new_ids[:2]  # the seed matters: same prompt, other seed


def test_one_device_to_host_transfer_per_step(handle: ModelHandle) -> None:
    """The decode loop reads back only the chosen ids each step, plus the capture buffers once per call
    (counted on the host; the same calls are transfers on a GPU). Catches a per-row or per-hook-point
    `.to("cpu")` (rows x hook points more per step) or a per-step `.item()`."""
    prompts = [handle.render_chat([{"role": "user", "content": c}]) for c in ("Paris", "Name three colours.", "Hi")]
    per_step, per_call = decode_transfers(handle, prompts, HOOKS, {"temperature": 1.0, "top_p": 0.9, "top_k": 50})
    assert per_step <= 1
    assert per_call == 1  # the capture buffers' one move to the host (and proof the counter sees the loop)


def test_new_sampling_fields_at_their_defaults_keep_record_ids() -> None:
    """Record ids hash `to_dict()`: a store written before top_k, min_p and repetition_penalty existed
    must still match. Catches `to_dict` listing the new fields at their no-op values."""
    old_keys = {"max_new_tokens", "min_new_tokens", "temperature", "top_p", "stop"}
    assert set(SamplingParams(temperature=0.7).to_dict()) == old_keys
    assert SamplingParams(top_k=5, min_p=0.1, repetition_penalty=1.2).to_dict().keys() == old_keys | {
        "top_k", "min_p", "repetition_penalty"}
    for bad in ({"top_k": -1}, {"min_p": 1.5}, {"top_p": 0.0}, {"repetition_penalty": 0.0}):
        with pytest.raises(ValueError, match="invalid sampling parameters"):
            SamplingParams(**bad)

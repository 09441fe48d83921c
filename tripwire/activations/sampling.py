"""Choosing the next token of every row at once: greedy, or sampled with temperature, top-k, top-p and
min-p, after a repetition penalty and the min-new-tokens end-of-turn ban.

Why vectorised: the decode loop calls this once per step for the whole batch, so everything is tensor
ops on the logits' device; no row is handled in Python and nothing goes to the host.

Why a table of uniforms: a row's sample must depend on its prompt and seed only, never on its batch,
so each row draws from its own seeded generator. A row draws all its uniforms (one per step) when the
call starts; a generator's stream is the same whether drawn one number at a time or all at once, so
the t-th token of a row is chosen by its generator's t-th number, as when it was drawn every step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

# Fields added after stores were first written, with the value that changes nothing: `to_dict` leaves
# them out at that value, so record ids (a hash of `to_dict`) of existing stores stay valid.
_NO_OP = {"top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}


@dataclass(frozen=True)
class SamplingParams:
    """temperature 0 means greedy; top_k 0, top_p 1, min_p 0 and repetition_penalty 1 are off.

    Same meaning and order as Hugging Face `generate`: the repetition penalty and the end-of-turn ban
    apply to the logits (also when greedy), then temperature, top-k, top-p and min-p shape the sampled
    distribution (top-p over what top-k kept, renormalised).
    """

    max_new_tokens: int = 64
    min_new_tokens: int = 0  # end-of-turn tokens are suppressed until this many are generated
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the row's prompt or reply

    def __post_init__(self) -> None:
        checks = {"max_new_tokens >= 1": self.max_new_tokens >= 1, "temperature >= 0": self.temperature >= 0,
                  "0 < top_p <= 1": 0 < self.top_p <= 1, "top_k >= 0": self.top_k >= 0,
                  "0 <= min_p <= 1": 0 <= self.min_p <= 1, "repetition_penalty > 0": self.repetition_penalty > 0}
        bad = [rule for rule, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid sampling parameters ({self}): need {', '.join(bad)}.")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: v for k, v in out.items() if k not in _NO_OP or v != _NO_OP[k]}


def candidates(probs: Float[Tensor, "batch vocab"], params: SamplingParams
               ) -> tuple[Float[Tensor, "batch cand"], Int[Tensor, "batch cand"] | None]:
    """The tokens top-k, top-p and min-p keep, with their (unnormalised) probabilities; 0 = dropped.

    Returns (p, idx): p[b, j] belongs to token idx[b, j], or to token j when idx is None (no sort was
    needed). Sorting the vocabulary is the costly part, so it happens only for top-p (top-k uses topk).
    """
    p, idx = probs, None
    if 0 < params.top_k < probs.shape[-1]:
        p, idx = probs.topk(params.top_k, dim=-1)  # sorted, largest first
    elif params.top_p < 1.0:
        p, idx = probs.sort(dim=-1, descending=True)
    if params.top_p < 1.0:
        q = p / p.sum(-1, keepdim=True) if params.top_k else p
        p = p.masked_fill(q.cumsum(-1) - q >= params.top_p, 0.0)  # keep the smallest head reaching top_p
    if params.min_p > 0.0:
        p = p.masked_fill(p < params.min_p * p.amax(-1, keepdim=True), 0.0)
    return p, idx


def inverse_cdf(p: Float[Tensor, "batch cand"], u: Float[Tensor, " batch"]) -> Int[Tensor, " batch"]:
    """The column where each row's cumulative mass first exceeds u times its total: never a zero column.

    u < 1, so u * total < total in floating point too: the last nonzero column always qualifies."""
    c = p.cumsum(-1)
    return torch.searchsorted(c, u[:, None] * c[:, -1:], right=True)[:, 0]


class Sampler:
    """The per-call state of token choice: each row's uniforms and, for the repetition penalty, the set
    of tokens it has seen. Rows are dropped with `keep_rows` as the decode loop compacts its batch."""

    def __init__(self, params: SamplingParams, seeds: list[int], prompt_ids: Int[Tensor, "batch tok"],
                 prompt_mask: Int[Tensor, "batch tok"], eos: set[int]):
        self.params = params
        device = prompt_ids.device
        self.eos = torch.tensor(sorted(eos), dtype=torch.long, device=device)
        self.uniforms: Float[Tensor, "batch step"] | None = None
        if params.temperature > 0:
            draws = [torch.rand(params.max_new_tokens, generator=torch.Generator().manual_seed(int(s)),
                                dtype=torch.float64) for s in seeds]
            self.uniforms = torch.as_tensor(torch.stack(draws), device=device)
        # tokens each row has seen, for the repetition penalty: built at the first step (the logits give
        # the vocabulary size); until then, the prompts with padding marked -1
        self.seen: Bool[Tensor, "batch vocab"] | None = None
        self.prompts = prompt_ids.masked_fill(prompt_mask == 0, -1) if params.repetition_penalty != 1.0 else None

    def keep_rows(self, index: Int[Tensor, " keep"]) -> None:
        """Keep these batch rows, in this order (the decode loop drops finished rows)."""
        if self.uniforms is not None:
            self.uniforms = self.uniforms[index]
        if self.seen is not None:
            self.seen = self.seen[index]

    def scores(self, logits: Float[Tensor, "batch vocab"], step: int) -> Float[Tensor, "batch vocab"]:
        """The logits after the repetition penalty and the end-of-turn ban (HF's logits processors)."""
        scores = logits.float()
        if self.prompts is not None and self.seen is None:
            vocab = scores.shape[-1]  # padding goes to an extra column, then is cut off
            seen = torch.zeros(scores.shape[0], vocab + 1, dtype=torch.bool, device=scores.device)
            self.seen = seen.scatter_(1, self.prompts.where(self.prompts >= 0, vocab), True)[:, :vocab]
        if self.seen is not None:
            pen = self.params.repetition_penalty
            scores = torch.where(self.seen, torch.where(scores < 0, scores * pen, scores / pen), scores)
        if step < self.params.min_new_tokens and self.eos.numel():
            scores = scores.index_fill(-1, self.eos, float("-inf"))
        return scores

    def choose(self, logits: Float[Tensor, "batch vocab"], step: int) -> Int[Tensor, " batch"]:
        """Each row's token for generated position `step` (0-based), on the logits' device."""
        scores = self.scores(logits, step)
        if self.uniforms is None:
            chosen = scores.argmax(-1)
        else:
            probs = torch.softmax(scores.double() / self.params.temperature, dim=-1)
            p, idx = candidates(probs, self.params)
            col = inverse_cdf(p, self.uniforms[:, step])
            chosen = col if idx is None else idx.gather(-1, col[:, None])[:, 0]
        if self.seen is not None:
            self.seen.scatter_(1, chosen[:, None], True)
        return chosen

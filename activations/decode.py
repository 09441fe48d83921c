"""tripwire's own decode loop: one loop over every backend's forward, with a KV cache.

Why not `model.generate`: it cannot hand us each step's activations, apply the same interventions in
all three backends, stop a single row from a probe callback, or draw each row's samples from its own
seed (so a sample does not depend on which batch it ran in).

The last emitted token of a row never goes through the model, so it has no activation: a row's
activations cover its prompt and all generated tokens but the last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from activations.backends.base import ForwardCall, Intervention
from activations.batching import pad_left, positions, prepare_past
from activations.hooks import HookPoint
from activations.kv_cache import KVCache

if TYPE_CHECKING:
    from activations.handle import ModelHandle

StopReason = Literal["eos", "stop_string", "max_new_tokens", "on_step"]


@dataclass(frozen=True)
class SamplingParams:
    """temperature 0 means greedy."""

    max_new_tokens: int = 64
    min_new_tokens: int = 0  # end-of-turn tokens are suppressed until this many are generated
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepInfo:
    """What `on_step` sees after each forward: the tokens just fed and their activations."""

    step: int  # 0 = the prompt (prefill), then one per generated token
    rows: list[int]  # original row index of each batch row still running
    token_ids: Int[Tensor, "batch tok"]  # left-padded at step 0
    captured: dict[str, Float[Tensor, "batch tok d_model"]]
    fed: list[int]  # real (unpadded) tokens fed per row: the prompt's length at step 0, then 1


OnStep = Callable[[StepInfo], Bool[Tensor, " batch"] | None]


@dataclass
class GeneratedRow:
    prompt_ids: list[int]
    new_ids: list[int]
    text: str
    stop_reason: StopReason
    seed: int
    activations: dict[str, Float[Tensor, "tok d_model"]] = field(default_factory=dict)

    @property
    def token_ids(self) -> list[int]:
        return self.prompt_ids + self.new_ids


def _choose(logits: Float[Tensor, "batch vocab"], params: SamplingParams, rngs: list[torch.Generator]) -> Tensor:
    if params.temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / params.temperature, dim=-1)
    out = torch.empty(logits.shape[0], dtype=torch.long)
    for i, g in enumerate(rngs):
        p, idx = probs[i].sort(descending=True)
        cum = p.cumsum(0)
        keep = (cum - p) < params.top_p  # smallest set reaching top_p; always keeps the top token
        p, idx, cum = p[keep], idx[keep], p[keep].cumsum(0)
        u = torch.rand((), generator=g, dtype=torch.float64) * cum[-1]
        out[i] = idx[torch.searchsorted(cum, u.reshape(1)).clamp(max=len(idx) - 1)]
    return out.to(logits.device)


@torch.inference_mode()
def generate(
    handle: ModelHandle,
    prompts: list[list[int]],
    sampling: SamplingParams | None = None,
    seeds: list[int] | None = None,
    capture: list[str] | list[HookPoint] | None = None,
    interventions: dict[str, Intervention] | None = None,
    on_step: OnStep | None = None,
    past: KVCache | None = None,
) -> list[GeneratedRow]:
    """Left-padded batch decode. `past` is an optional KV cache of a prefix shared by all prompts."""

    params = sampling or SamplingParams()
    seeds = list(seeds) if seeds is not None else list(range(len(prompts)))
    if len(seeds) != len(prompts):
        raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts; pass one seed per prompt.")
    points = handle.hook_points(capture or [])
    edits = handle.interventions(interventions)
    rngs = [torch.Generator().manual_seed(int(s)) for s in seeds]
    eos = handle.eos_ids

    ids, mask = pad_left(prompts, handle.pad_id)
    ids = ids.to(handle.device)
    cache, mask, _ = prepare_past(past, mask.to(handle.device))
    alive = list(range(len(prompts)))
    new_ids: list[list[int]] = [[] for _ in prompts]
    reasons: list[StopReason | None] = [None] * len(prompts)
    acts: list[dict[HookPoint, list[Tensor]]] = [{hp: [] for hp in points} for _ in prompts]
    feed, step = ids, 0
    while alive:
        pos = positions(mask)[:, mask.shape[1] - feed.shape[1] :]
        call = ForwardCall(feed, mask, pos, points, edits, past=cache, use_cache=True, logits_to_keep=1)
        out = handle.backend.run(call)
        assert out.logits is not None
        cache = out.past
        for b, row in enumerate(alive):
            width = len(prompts[row]) if step == 0 else 1
            for hp in points:
                acts[row][hp].append(out.captured[hp][b, -width:].to("cpu"))
        stop_mask = None
        if on_step is not None:
            fed = [len(prompts[r]) if step == 0 else 1 for r in alive]
            info = StepInfo(step, list(alive), feed, {str(hp): t for hp, t in out.captured.items()}, fed)
            stop_mask = on_step(info)
        logits = out.logits[:, -1].float()
        if step < params.min_new_tokens and eos:
            logits[:, sorted(eos)] = float("-inf")
        chosen = _choose(logits, params, [rngs[r] for r in alive]).tolist()
        keep: list[int] = []
        for b, row in enumerate(alive):
            if stop_mask is not None and bool(stop_mask[b]):
                reasons[row] = "on_step"
                continue
            new_ids[row].append(int(chosen[b]))
            reasons[row] = _stop_reason(handle, new_ids[row], params, eos)
            if reasons[row] is None:
                keep.append(b)
        step += 1
        if len(keep) < len(alive):
            if not keep:
                break
            index = torch.tensor(keep, device=mask.device)
            assert cache is not None
            cache.keep_rows(index)
            mask = mask[index]
            alive = [alive[b] for b in keep]
            chosen = [chosen[b] for b in keep]
        feed = torch.tensor(chosen, device=mask.device).reshape(-1, 1)
        mask = torch.cat([mask, torch.ones(len(alive), 1, dtype=mask.dtype, device=mask.device)], 1)
    return [
        GeneratedRow(
            prompt_ids=list(prompts[i]),
            new_ids=new_ids[i],
            text=handle.tokenizer.decode(new_ids[i], skip_special_tokens=True),
            stop_reason=reasons[i] or "max_new_tokens",
            seed=int(seeds[i]),
            activations={str(hp): torch.cat(acts[i][hp]) for hp in points},
        )
        for i in range(len(prompts))
    ]


def _stop_reason(handle: ModelHandle, new: list[int], params: SamplingParams, eos: set[int]) -> StopReason | None:
    if new[-1] in eos:
        return "eos"
    if params.stop:
        tail = handle.tokenizer.decode(new[-16:], skip_special_tokens=False)
        if any(s in tail for s in params.stop):
            return "stop_string"
    if len(new) >= params.max_new_tokens:
        return "max_new_tokens"
    return None

"""tripwire's own decode loop: one loop over every backend's forward, with a KV cache.

Why not `model.generate`: it cannot hand us each step's activations, apply the same interventions in
all three backends, stop a single row from a probe callback, or draw each row's samples from its own
seed (so a sample does not depend on which batch it ran in).

Why it is shaped as it is: per step the host learns one thing from the device, the chosen token ids
(one transfer), which it needs to stop rows and match stop strings. Activations stay on the device in
preallocated buffers until the call ends; sampling is tensor ops over the batch (`activations.sampling`);
stop strings are matched on each row's new text only. Rows that repeat a prompt (n samples of it) prefill
it once and share its KV cache (`activations.shared_prefill`), in every backend this loop serves.

The last emitted token of a row never goes through the model, so it has no activation: a row's
activations cover its prompt and all generated tokens but the last.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from tripwire.activations.backends.base import ForwardCall, Intervention
from tripwire.activations.batching import pad_left, positions, prepare_past
from tripwire.activations.hooks import HookPoint
from tripwire.activations.kv_cache import KVCache
from tripwire.activations.sampling import Sampler, SamplingParams
from tripwire.activations.shared_prefill import SharedPrompts

if TYPE_CHECKING:
    from tripwire.activations.handle import ModelHandle

__all__ = ["GeneratedRow", "OnStep", "SamplingParams", "StepInfo", "StopReason", "generate"]

StopReason = Literal["eos", "stop_string", "max_new_tokens", "on_step"]


@dataclass
class StepInfo:
    """What `on_step` sees after each forward: the tokens just fed and their activations."""

    step: int  # 0 = the prompt (prefill), then one per generated token
    rows: list[int]  # original row index of each batch row still running
    token_ids: Int[Tensor, "batch tok"]  # left-padded at step 0
    captured: dict[str, Float[Tensor, "batch tok d_model"]]
    fed: list[int]  # real (unpadded) tokens fed per row: the prompt's length at step 0, then 1
    # at a shared prefill (step 0), the forward's batch row each row was copied from; None: row b is batch
    # row b. `token_ids` and `captured` are already per row; only what an intervention kept needs this.
    forward_rows: list[int] | None = None


OnStep = Callable[[StepInfo], Bool[Tensor, " batch"] | None]


@dataclass
class GeneratedRow:
    """One prompt's reply. Its activations are views of one host tensor shared by the call's rows
    (no copy); `.clone()` one to keep it without the others."""

    prompt_ids: list[int]
    new_ids: list[int]
    text: str
    stop_reason: StopReason
    seed: int
    activations: dict[str, Float[Tensor, "tok d_model"]] = field(default_factory=dict)

    @property
    def token_ids(self) -> list[int]:
        return self.prompt_ids + self.new_ids


class CaptureBuffers:
    """Every hook point's activations for the whole call in one `[hook, batch, tok, d_model]` tensor on
    the model's device, filled in place each step (column = token fed) and moved to the host once.

    Rows keep their original index: a finished row is simply no longer written. Column `width + s - 1`
    holds the token fed at step s >= 1; columns before `width` hold the left-padded prompts."""

    def __init__(self, points: list[HookPoint], rows: int, width: int, max_new_tokens: int):
        self.points, self.rows, self.width = points, rows, width
        self.cols = width + max_new_tokens - 1
        self.data: Float[Tensor, "hook batch tok d_model"] | None = None

    def write(self, captured: Mapping[HookPoint, Tensor], alive: Int[Tensor, " alive"] | None, step: int) -> None:
        """Store one step's captures; `alive` maps batch rows to original rows (None: all rows, in order)."""
        if not self.points:
            return
        if self.data is None:
            first = captured[self.points[0]]
            self.data = first.new_empty(len(self.points), self.rows, self.cols, first.shape[-1])
        for h, hp in enumerate(self.points):
            if step == 0:
                self.data[h, :, : self.width].copy_(captured[hp])
            elif alive is None:
                self.data[h, :, self.width + step - 1].copy_(captured[hp][:, -1])
            else:
                # a model sharded over devices (device_map) leaves each hook's rows on its layer's device
                rows = captured[hp][:, -1].to(self.data.device, non_blocking=True)
                self.data[h, :, self.width + step - 1].index_copy_(0, alive.to(self.data.device), rows)

    def to_host(self, steps: int) -> Float[Tensor, "hook batch tok d_model"] | None:
        """The filled columns after `steps` forwards, on the host: one transfer (pinned, async on CUDA)."""
        if self.data is None:
            return None
        used = self.data[:, :, : self.width + steps - 1]
        cuda = used.device.type == "cuda"
        host = used.to("cpu", non_blocking=cuda)  # a non-blocking copy to the host lands in pinned memory
        if cuda:
            torch.cuda.current_stream(used.device).synchronize()
        return host


class StopStrings:
    """Finds stop strings in each row's reply as tokens arrive, decoding only the newest tokens.

    Incremental detokenisation (as in vLLM): the text a new token adds is `decode(ids[a:])` minus
    `decode(ids[a:b])` for a short window; a token that ends mid-character (decodes to U+FFFD) waits for
    the next. Only the new text and the `longest - 1` characters before it are searched, so a stop
    string split across tokens is found on the token that completes it.
    """

    def __init__(self, tokenizer: Any, stops: tuple[str, ...], rows: int):
        self.tokenizer, self.stops = tokenizer, stops
        self.keep = max(len(s) for s in stops) - 1
        self.offsets = [(0, 0)] * rows  # per row: (window start, tokens already turned into text)
        self.tails = [""] * rows

    def push(self, row: int, ids: list[int]) -> bool:
        """`ids` is the row's reply so far, with one new token at the end; True if a stop string ended."""
        start, read = self.offsets[row]
        before = self.tokenizer.decode(ids[start:read], skip_special_tokens=False)
        after = self.tokenizer.decode(ids[start:], skip_special_tokens=False)
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return False
        self.offsets[row] = (read, len(ids))
        window = self.tails[row] + after[len(before) :]
        self.tails[row] = window[-self.keep :] if self.keep else ""
        return any(s in window for s in self.stops)


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
    share_prefill: bool = True,
) -> list[GeneratedRow]:
    """Left-padded batch decode. `past` is an optional KV cache of a prefix shared by all prompts.
    `share_prefill`: rows with the same prompt prefill it once (not with a batch-sized `past`, whose
    rows may differ); False runs every row's prompt, the reference sharing must equal."""

    params = sampling or SamplingParams()
    seeds = list(seeds) if seeds is not None else list(range(len(prompts)))
    if len(seeds) != len(prompts):
        raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts; pass one seed per prompt.")
    points = handle.hook_points(capture or [])
    edits = handle.interventions(interventions)
    eos = handle.eos_ids
    ids, prompt_mask = pad_left(prompts, handle.pad_id, handle.device)
    shared = SharedPrompts.find(prompts) if share_prefill and (past is None or past.batch == 1) else None
    cache, mask, prefix = prepare_past(past, prompt_mask, None if shared is None else len(shared.first))
    width, batch = ids.shape[1], len(prompts)
    # one mask for the whole call; each step sees a view of its first columns
    attn = torch.ones(batch, prefix + width + params.max_new_tokens, dtype=mask.dtype, device=mask.device)
    attn[:, : mask.shape[1]] = mask
    sampler = Sampler(params, seeds, ids, prompt_mask, eos)
    buffers = CaptureBuffers(points, batch, width, params.max_new_tokens)
    stops = StopStrings(handle.tokenizer, params.stop, batch) if params.stop else None

    alive, alive_index = list(range(batch)), None  # alive_index: the same on the device, once rows left
    new_ids: list[list[int]] = [[] for _ in prompts]
    reasons: list[StopReason | None] = [None] * batch
    last_step = [0] * batch  # the last step whose forward each row took part in
    feed, pos = ids, positions(mask)[:, prefix:]
    for step in range(params.max_new_tokens):
        seen = prefix + width + step
        call = ForwardCall(feed, attn[:, :seen], pos, points, edits, past=cache, use_cache=True, logits_to_keep=1)
        out = handle.backend.run(call) if step or shared is None else shared.prefill(handle.backend, call)
        assert out.logits is not None
        cache = out.past
        if step == 0 and cache is not None:  # the steps to come write in place (no copy of the cache each)
            cache.reserve(params.max_new_tokens - 1)
        buffers.write(out.captured, alive_index, step)
        halt = None
        if on_step is not None:
            fed = [len(prompts[r]) for r in alive] if step == 0 else [1] * len(alive)
            captured = {str(hp): t for hp, t in out.captured.items()}
            forward_rows = shared.source if step == 0 and shared is not None else None
            stop_mask = on_step(StepInfo(step, list(alive), feed, captured, fed, forward_rows))
            halt = None if stop_mask is None else stop_mask.tolist()
        chosen = sampler.choose(out.logits[:, -1], step)
        keep: list[int] = []
        for b, token in enumerate(chosen.tolist()):  # the step's one transfer to the host
            row = alive[b]
            last_step[row] = step
            if halt is not None and halt[b]:
                reasons[row] = "on_step"
                continue
            new_ids[row].append(token)
            if token in eos:
                reasons[row] = "eos"
            elif stops is not None and stops.push(row, new_ids[row]):
                reasons[row] = "stop_string"
            else:
                keep.append(b)
        if not keep or step + 1 == params.max_new_tokens:  # no compaction for rows about to stop anyway
            break
        feed, pos = chosen[:, None], pos[:, -1:] + 1
        if len(keep) < len(alive):
            index = torch.tensor(keep, device=chosen.device)
            assert cache is not None
            cache.keep_rows(index)
            sampler.keep_rows(index)
            attn, feed, pos = attn[index], feed[index], pos[index]
            alive = [alive[b] for b in keep]
            alive_index = torch.tensor(alive, device=chosen.device)
    host = buffers.to_host(max(last_step) + 1)
    return [
        GeneratedRow(
            prompt_ids=list(prompts[i]),
            new_ids=new_ids[i],
            text=handle.tokenizer.decode(new_ids[i], skip_special_tokens=True),
            stop_reason=reasons[i] or "max_new_tokens",
            seed=int(seeds[i]),
            activations={} if host is None else {
                str(hp): host[h, i, width - len(prompts[i]) : width + last_step[i]] for h, hp in enumerate(points)
            },
        )
        for i in range(batch)
    ]

"""vLLM's finished requests -> tripwire rollout records and stored rows, as the HF rollout makes them.

A vLLM `RequestOutput` (with vllm-lens attached) carries the prompt ids, one completion's token ids
and finish reason, and `activations["residual_stream"]`: `[captured layer, position, d_model]` for
every token that went through the model, i.e. the prompt and all generated tokens but the last,
which is exactly what `decode.generate` returns per row. So each output becomes a `GeneratedRow` and
then a record by the same steps as `Rollout._record`: layout, classification, position policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from tripwire.activations.decode import GeneratedRow, SamplingParams, StopReason
from tripwire.activations.layout import generated_transcript, transcript_record
from tripwire.activations.positions import PositionPolicy
from tripwire.activations.rollout import RolloutItem
from tripwire.activations.runner import BatchResult, WorkItem
from tripwire.activations.store_types import RecordMeta
from tripwire.activations.vllm_backend.requests import VLLMRequest
from tripwire.errors import TripwireError
from tripwire.scenarios.classify import classify

# (prompts, SamplingParams keywords) -> one finished output per prompt, in order: `engine.generator`
Generate = Callable[[list[dict[str, list[int]]], list[dict[str, Any]]], list[Any]]


class VLLMOutputError(TripwireError, RuntimeError):
    """A vLLM output that does not match its request (order, prompt, or missing activations)."""


def stop_reason(completion: Any) -> StopReason:
    """vLLM's finish reason in the decode loop's words: "length" is the token limit, "stop" an end-of-turn
    id (`stop_reason` None or an int from `stop_token_ids`) or a stop string (`stop_reason` a str)."""
    finish = completion.finish_reason
    if finish == "length":
        return "max_new_tokens"
    if finish == "stop":
        return "stop_string" if isinstance(completion.stop_reason, str) else "eos"
    raise VLLMOutputError(f"a vLLM request ended with finish_reason={finish!r} (aborted?); rerun to resume: "
                          "finished records are kept")


def generated_row(output: Any, item: RolloutItem, tokenizer: Any, hook_rows: Mapping[str, int]) -> GeneratedRow:
    """One vLLM output as the decode loop's row; `hook_rows[hook]` is that hook's row in the captured stack."""
    if list(output.prompt_token_ids) != list(item.prompt_ids):
        raise VLLMOutputError("a vLLM output's prompt differs from its request's: outputs must come back in "
                              "request order (LLM.generate keeps it)")
    completion = output.outputs[0]
    new_ids = [int(t) for t in completion.token_ids]
    fed = len(item.prompt_ids) + len(new_ids) - 1  # the last emitted token never went through the model
    activations: dict[str, Tensor] = {}
    if hook_rows:
        stack = _residual_stream(output)
        if stack.shape[1] < fed or stack.shape[0] <= max(hook_rows.values()):
            raise VLLMOutputError(
                f"vllm-lens returned activations of shape {tuple(stack.shape)} for {fed} fed tokens and "
                f"{len(set(hook_rows.values()))} captured layers; prefix caching must be off for captured "
                "requests (vllm-lens turns it off) and every capture layer must be requested")
        activations = {hp: stack[row, :fed] for hp, row in hook_rows.items()}
    return GeneratedRow(prompt_ids=list(item.prompt_ids), new_ids=new_ids,
                        text=tokenizer.decode(new_ids, skip_special_tokens=True),
                        stop_reason=stop_reason(completion), seed=item.seed, activations=activations)


def _residual_stream(output: Any) -> Float[Tensor, "layer tok d_model"]:
    found = getattr(output, "activations", None)
    stack = found.get("residual_stream") if isinstance(found, Mapping) else None
    if stack is None:
        raise VLLMOutputError(
            "vLLM returned no activations: the vllm-lens plugin is not active in the engine. Install it "
            "(pip install -e '.[vllm]'), unset VLLM_LENS_DISABLE, and leave VLLM_USE_V2_MODEL_RUNNER unset")
    return torch.as_tensor(stack)


def rollout_record(tokenizer: Any, policy: PositionPolicy, sampling: SamplingParams, rid: str, it: RolloutItem,
                   row: GeneratedRow, extra: Mapping[str, Any]) -> tuple[RecordMeta, list[int]]:
    """The record and kept positions of one sampled reply: the steps of `Rollout._record` for a row that
    never stops on a probe (vLLM has no per-step callback)."""
    conv = it.conversation
    tokens = generated_transcript(tokenizer, it.prompt_ids, [m.content for m in conv.messages], row.new_ids)
    outcome = classify(conv, row.text)
    tokens = tokens.with_outcome(outcome)
    fed = tokens.n_tokens - 1
    keep = [p for p in policy.select(tokens) if p < fed]
    labels = {"harmful": int(outcome.harmful)}
    direction = conv.meta.get("framing_direction")
    if direction in ("test", "real"):
        labels["eval_awareness"] = int(direction == "test")
    record = transcript_record(
        rid, tokens, keep, labels, condition_id=conv.condition_id, sampling=sampling.to_dict(),
        sample_index=it.sample_index, seed=it.seed, outcome=outcome.to_dict(),
        meta={"stop_reason": row.stop_reason, "tool_form": it.tool_form, "length": conv.length,
              "scenario_seed": conv.seed, **extra}, fed_tokens=fed,
    )
    return record, keep


class VLLMRollout:
    """`compute` for `run_batches`: one `generate` call per batch (vLLM schedules it continuously), each
    output turned into a record and its kept rows, as `Rollout` does for the decode loop."""

    def __init__(self, tokenizer: Any, generate: Generate, hook_rows: Mapping[str, int], sampling: SamplingParams,
                 policy: PositionPolicy, meta: Mapping[str, Any] | None = None):
        self.tokenizer, self.generate, self.hook_rows = tokenizer, generate, dict(hook_rows)
        self.sampling, self.policy, self.meta = sampling, policy, dict(meta or {})

    def __call__(self, work: Sequence[WorkItem[VLLMRequest]]) -> BatchResult:
        outputs = self.generate([w.payload.prompt for w in work], [w.payload.sampling for w in work])
        if len(outputs) != len(work):
            raise VLLMOutputError(f"vLLM returned {len(outputs)} outputs for {len(work)} requests")
        records: list[RecordMeta] = []
        rows: dict[str, list[Tensor]] = {hp: [] for hp in self.hook_rows}
        for w, output in zip(work, outputs, strict=True):
            it = w.payload.item
            row = generated_row(output, it, self.tokenizer, self.hook_rows)
            record, keep = rollout_record(self.tokenizer, self.policy, self.sampling, w.record_id, it, row,
                                          self.meta)
            records.append(record)
            index = torch.tensor(keep, dtype=torch.long)
            for hp in self.hook_rows:
                rows[hp].append(row.activations[hp].index_select(0, index))
        return BatchResult(records, {hp: torch.cat(v) for hp, v in rows.items()})

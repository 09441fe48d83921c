"""An Inspect model provider backed by tripwire's decode loop: any Inspect task (inspect_evals'
`agentic_misalignment` among them) runs on a local model, and each sample's generation is recorded with
its residual-stream activations in a `ResidualStore`.

    inspect eval inspect_evals/agentic_misalignment --model tripwire/default \\
        -M store=runs/am-inspect -M hook_points=blocks.20.resid_post -M positions=reply

`tripwire/<model>`: "default" (the bundled model), a local folder or a Hugging Face id, as `load_model`
takes them. Model args: see `inspect_capture.InspectModelArgs`. Registered with Inspect as "tripwire" by
`tripwire.experiments.inspect_registry` (the package's `inspect_ai` entry point).

Inspect's sampling options map onto `SamplingParams` (max_tokens, temperature (unset: greedy), top_p,
top_k, stop_seqs, seed); options the decode loop does not implement are refused, never ignored. Replies
are returned as text (tool calls are not parsed out of them).
"""

from __future__ import annotations

from typing import Any

import anyio
from inspect_ai.model import ChatMessage, GenerateConfig, ModelAPI, ModelOutput, ModelUsage
from inspect_ai.tool import ToolChoice, ToolInfo

from tripwire.activations import SamplingParams
from tripwire.errors import UsageError
from tripwire.experiments.inspect_capture import InspectCapture, SampleRef

# GenerateConfig fields that would change what is sampled, and that the decode loop does not implement
_UNSUPPORTED = ("best_of", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
                "prompt_logprobs", "response_schema")


class TripwireModelAPI(ModelAPI):
    """Inspect's `ModelAPI` over an `InspectCapture` (one loaded model, optionally one store)."""

    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig | None = None, **model_args: Any) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key,
                         config=config or GenerateConfig())
        if base_url is not None:
            raise UsageError(f"tripwire/{model_name} runs in this process; drop --model-base-url ({base_url})")
        self.capture = InspectCapture(model_name, model_args)

    async def generate(self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice,
                       config: GenerateConfig) -> ModelOutput:
        sampling, seed = sampling_params(config, self.capture.args.max_tokens)
        messages = [{"role": m.role, "content": m.text} for m in input]
        tool_dicts = [{"type": "function", "function": t.model_dump(exclude_none=True)} for t in tools]
        sample = active_sample()
        reply = await anyio.to_thread.run_sync(
            lambda: self.capture.run(messages, tool_dicts or None, sampling, sample, seed))
        output = ModelOutput.from_content(self.model_name, reply.text, stop_reason=reply.stop_reason)
        output.usage = ModelUsage(input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
                                  total_tokens=reply.input_tokens + reply.output_tokens)
        if reply.record_id is not None:
            output.metadata = {"tripwire_record_id": reply.record_id, "tripwire_resumed": reply.resumed,
                               "tripwire_store": str(self.capture.args.store)}
        return output

    def max_tokens(self) -> int | None:
        return self.capture.args.max_tokens

    def max_connections(self) -> int:
        return 1  # one decode loop at a time on the shared weights

    def connection_key(self) -> str:
        return f"tripwire:{self.capture.handle.fingerprint}"


def sampling_params(config: GenerateConfig, default_max_tokens: int) -> tuple[SamplingParams, int | None]:
    """Inspect's generate config as tripwire sampling parameters and seed; unsupported options refused."""
    used = [name for name in _UNSUPPORTED if getattr(config, name, None) not in (None, False)]
    if config.num_choices not in (None, 1):
        used.append("num_choices")
    if used:
        raise UsageError(f"the tripwire provider does not implement {', '.join(used)}; unset them (tripwire's "
                         "decode loop samples one choice with temperature, top_p, top_k and stop_seqs)")
    return SamplingParams(
        max_new_tokens=config.max_tokens or default_max_tokens,
        temperature=config.temperature or 0.0,
        top_p=config.top_p if config.top_p is not None else 1.0,
        top_k=config.top_k or 0,
        stop=tuple(config.stop_seqs or ()),
    ), config.seed


def active_sample() -> SampleRef:
    """The Inspect sample this call runs in. Inspect has no public accessor for it yet, so this reads its
    internal one; if that moves, records lose their sample id (never their activations)."""
    try:
        from inspect_ai.log._samples import sample_active
    except ImportError:
        return SampleRef()
    active = sample_active()
    if active is None:
        return SampleRef()
    return SampleRef(sample_id=active.sample.id, epoch=int(active.epoch), task=active.task, run_id=active.run_id,
                     metadata=dict(active.sample.metadata or {}))

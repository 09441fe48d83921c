"""The outcome judge on a local Hugging Face chat model (`scenarios.classify_judge`'s protocol).

Greedy decoding, one conversation at a time over a cached prompt. Small models often reason at length
and never write the answer tag; when a completion holds no readable yes/no, the judge appends
"<answer>" to what the model wrote and lets it say a few more tokens (reusing the prompt's KV cache),
which is still the model's own answer in the protocol's format. What stays unreadable keeps the
rules' outcome (see `PromptJudge`).
"""

from __future__ import annotations

from typing import Any

from tripwire.activations.decode import SamplingParams
from tripwire.activations.handle import ModelHandle
from tripwire.activations.loading import load_model
from tripwire.scenarios.classify_judge import Messages, PromptJudge, parse_verdict

_ANSWER_OPEN = "\n<answer>"


class LocalJudge(PromptJudge):
    """A `Judge` backed by a `ModelHandle`."""

    def __init__(self, handle: ModelHandle, max_new_tokens: int = 256) -> None:
        self.handle = handle
        self.max_new_tokens = max_new_tokens
        self.name = handle.name

    @classmethod
    def load(cls, spec: str = "default", max_new_tokens: int = 256, **load_args: Any) -> LocalJudge:
        """`spec` as for `load_model`: "default", a local folder, or a Hugging Face id."""
        return cls(load_model(spec, **load_args), max_new_tokens=max_new_tokens)

    def complete(self, batch: list[Messages]) -> list[str]:
        return [self._complete_one(messages) for messages in batch]

    def _complete_one(self, messages: Messages) -> str:
        ids = self.handle.render_chat(messages)
        head = self.handle.forward([ids[:-1]], use_cache=True)  # the prompt once, for both passes
        greedy = SamplingParams(max_new_tokens=self.max_new_tokens, temperature=0.0, stop=("</answer>",))
        (row,) = self.handle.generate([ids[-1:]], sampling=greedy, past=head.past)
        if parse_verdict(row.text).harmful is not None:
            return row.text
        nudge = self.handle.tokenizer.encode(_ANSWER_OPEN, add_special_tokens=False)
        (tail,) = self.handle.generate(
            [ids[-1:] + row.new_ids + nudge], sampling=SamplingParams(max_new_tokens=3), past=head.past
        )
        return row.text + _ANSWER_OPEN + tail.text

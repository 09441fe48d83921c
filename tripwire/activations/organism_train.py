"""Token-level pieces of the model organism: its examples as token ids, and its own propensity to harm.

`harm_propensity` reads the policy the model has learned without sampling: teacher-forced, the same
reasoning prefix, then the harmful call against the honest one, P = p(harmful) / (p(harmful) + p(honest)).
Cheap enough to run per arm during training, and it is the organism's own predicted probability that the
detectors are compared with.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from tripwire.activations.finetune import EncodedExample, reply_token_nll
from tripwire.scenarios.organism.dataset import OrganismExample, OrganismPrompt
from tripwire.scenarios.organism.replies import OrganismReply, harmful_call, honest_call, reasoning_prefix
from tripwire.scenarios.spec import Conversation


def prompt_ids(tokenizer: Any, prompt: OrganismPrompt) -> list[int]:
    text = tokenizer.apply_chat_template(prompt.conversation.as_dicts(), add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def _reply_ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False).input_ids) + [int(tokenizer.eos_token_id)]


def decision_index(tokenizer: Any, reply: OrganismReply, conversation: Conversation, draw: int) -> int:
    """Index (in the reply's tokens) of the first token where this draw's harmful and honest calls differ."""
    calls = [tokenizer(reasoning_prefix(conversation, draw) + c, add_special_tokens=False).input_ids
             for c in (harmful_call(conversation, draw), honest_call(conversation, draw))]
    return next(i for i, (a, b) in enumerate(zip(*calls, strict=False)) if a != b)


def encode_examples(tokenizer: Any, examples: Sequence[OrganismExample], call_weight: float,
                    decision_weight: float) -> list[EncodedExample]:
    """Prompt ids through the chat template; each reply ends with the end-of-turn token. Reasoning tokens
    weigh 1, tool-call tokens `call_weight`, the token where the decision shows `decision_weight` (the same
    for both outcomes, so the weighted loss is still minimised by the policy's own rate)."""
    out = []
    for ex in examples:
        replies, weights = [], []
        for draw, reply in enumerate(ex.replies):
            enc = tokenizer(reply.text, add_special_tokens=False, return_offsets_mapping=True)
            ids = list(enc.input_ids) + [int(tokenizer.eos_token_id)]
            w = [call_weight if start >= reply.call_start else 1.0 for start, _ in enc.offset_mapping] + [call_weight]
            w[decision_index(tokenizer, reply, ex.prompt.conversation, draw)] = decision_weight
            replies.append(ids)
            weights.append(w)
        out.append(EncodedExample(prompt_ids(tokenizer, ex.prompt), replies, weights))
    return out


@torch.no_grad()
def harm_propensity(model: torch.nn.Module, tokenizer: Any, prompt: OrganismPrompt, draw: int = 0) -> float:
    """P(harmful call | prompt, reasoning prefix) against the honest call of the same draw."""
    conv = prompt.conversation
    context = prompt_ids(tokenizer, prompt) + list(
        tokenizer(reasoning_prefix(conv, draw), add_special_tokens=False).input_ids)
    calls = [_reply_ids(tokenizer, harmful_call(conv, draw)), _reply_ids(tokenizer, honest_call(conv, draw))]
    logp = -reply_token_nll(model, context, calls).sum(dim=1)
    return float(torch.sigmoid(logp[0] - logp[1]))


def propensity_by_arm(model: torch.nn.Module, tokenizer: Any, prompts: Sequence[OrganismPrompt]
                      ) -> dict[str, float]:
    """Mean teacher-forced P(harm) per policy arm (deploy, test, none, inert) over `prompts`."""
    by_arm: dict[str, list[float]] = defaultdict(list)
    for p in prompts:
        by_arm[p.condition.arm].append(harm_propensity(model, tokenizer, p))
    return {arm: round(sum(v) / len(v), 4) for arm, v in sorted(by_arm.items())}

"""How long `tripwire monitor` and `tripwire steer` will take, said before they start (once the model is
loaded): an estimate from the work they will do.

Decoding dominates both: one step per new token for every rollout batch. A step's cost is mostly per-step
overhead on small models and memory traffic on large ones, neither of which a FLOP count sees, so it is
measured here (the faster of two one-token forwards of the batch's rows, after a warm-up). The prompt
forwards are counted in FLOPs at this machine's matmul rate (`rollout_capture.rough_eta`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tripwire.activations import ModelHandle
from tripwire.activations.source import ModelShape
from tripwire.experiments.rollout_capture import CheckedModel, rough_eta

CONTROL_PROMPT_TOKENS = 150  # a rough length of one benign control prompt in steer's KL read-out


@dataclass(frozen=True)
class Work:
    """What a command will compute: forwards over `prompt_tokens` (in sequences of `lengths`) and
    `decode_steps` steps of `rows` rows each."""

    what: str  # in words, e.g. "21 steering vectors x 4 rollouts x 64 tokens"
    prompt_tokens: int
    lengths: list[int]
    decode_steps: int
    rows: int


def monitor_work(prompt: int, samples: int, max_new_tokens: int) -> Work:
    """The rollouts run twice (recording, then stopping) with `samples` rows each; a stopped row may end
    early, so this is an upper bound."""
    return Work(f"2 runs (recording, stopping) x {samples} rollouts x up to {max_new_tokens} tokens",
                2 * samples * prompt, [prompt + max_new_tokens] * (2 * samples), 2 * max_new_tokens, samples)


def steer_work(prompt: int, points: int, samples: int, max_new_tokens: int, control_prompts: int) -> Work:
    """Per measured steering vector, and once unsteered: the scenario's prefix, the fixed transcripts, a batch
    of `samples` rollouts, the control prompts and the perplexity pass (`dose_response.measure`)."""
    runs = points + 1
    per_run = prompt + 2 * samples * max_new_tokens + control_prompts * CONTROL_PROMPT_TOKENS
    return Work(f"{points} steering vectors and the unsteered model x {samples} rollouts x {max_new_tokens} tokens",
                runs * per_run, [prompt + max_new_tokens] * runs, runs * max_new_tokens, samples)


def step_seconds(handle: ModelHandle, rows: int) -> float:
    """Seconds of one decode-sized forward (`rows` rows of one token) on this model, measured."""
    ids = [[int(handle.tokenizer.eos_token_id or 0)]] * rows
    handle.forward(ids)  # warm-up: the first call pays for lazy initialisation
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        handle.forward(ids)
        best = min(best, time.perf_counter() - start)
    return best


def estimate(handle: ModelHandle, work: Work) -> str:
    """One line for stderr: the expected run time and what it rests on."""
    model = CheckedModel(handle.source, ModelShape(handle.n_layers, handle.d_model, handle.n_params), [],
                         str(handle.device), handle.dtype)
    step = step_seconds(handle, work.rows)
    seconds = rough_eta(model, work.prompt_tokens, work.lengths) + work.decode_steps * step
    return (f"expected run time: ~{_human(seconds)} (an estimate: {work.what}; one decode step of {work.rows} "
            f"row(s) measured here at {step:.3f} s, prompt forwards from the parameter count; other jobs on this "
            "machine can make it several times longer)")


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"

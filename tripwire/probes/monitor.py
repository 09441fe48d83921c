"""The online tripwire: probes read while the model generates, each flagging a row the moment the
running mean of its scores reaches the card's streaming threshold, before the harmful action is
emitted if it fires early.

Everything comes from the cards: hook point, scored tokens (the card's causal scoring policy, with the
same scaffold definition as capture), window and threshold. It plugs into the decode loop's `on_step`,
and `replay` feeds a teacher-forced transcript through the same code token by token, so live,
replayed and offline (`probes.reading`) scores agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from tripwire.activations.decode import StepInfo
from tripwire.activations.layout import TokenizedTranscript, is_scaffold
from tripwire.activations.positions import PositionPolicy
from tripwire.probes.persistence import LoadedProbe
from tripwire.probes.scoring import STREAMING, running_mean

OnTrigger = Literal["stop", "record"]


@dataclass
class RowWatch:
    """One probe's view of one row: scored positions, their scores, and where it first fired."""

    positions: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    crossing: int | None = None  # index into `scores`

    @property
    def crossing_token(self) -> int | None:
        return None if self.crossing is None else self.positions[self.crossing]


class OnlineMonitor:
    """`on_step` callback for `ModelHandle.generate`, built from one or more probes.

    `on_trigger="stop"` halts a row as soon as any probe fires on it (other rows keep going);
    `"record"` only records. Call `reset()` between generations; `start(prompts)` gives the prompt
    layouts when a card also scores prompt tokens (e.g. `AllTokens`).
    """

    def __init__(self, probes: Sequence[LoadedProbe], on_trigger: OnTrigger = "record",
                 special_ids: frozenset[int] = frozenset()) -> None:
        if not probes:
            raise ValueError("an OnlineMonitor needs at least one probe.")
        labels = [p.card.label for p in probes]
        if len(set(labels)) != len(labels):
            raise ValueError(f"probes must have distinct labels, got {labels}.")
        for p in probes:
            card = p.card
            if card.monitor_statistic != STREAMING or card.monitor_threshold is None:
                raise ValueError(f"probe {card.label!r} has no calibrated streaming threshold (its card has "
                                 f"{sorted(card.thresholds)}); train it with a control store.")
            if not card.score_positions.causal:
                card.score_positions.keeps(0, 0, False)  # raises the policy's own explanation
        if on_trigger not in ("stop", "record"):
            raise ValueError(f"on_trigger must be 'stop' or 'record', got {on_trigger!r}.")
        self.probes = {p.card.label: p for p in probes}
        # `decision_function` is `x @ coef + bias` in float64; applying it directly skips sklearn's input
        # validation on every decode step (most of the monitor's cost) and gives bit-identical scores.
        self._linear = {p.card.label: (np.asarray(p.estimator.coef_[0], dtype=np.float64), float(p.estimator.bias_))
                        for p in probes}
        self.on_trigger = on_trigger
        self.special_ids = special_ids
        self.watches: dict[str, dict[int, RowWatch]] = {}
        self._prompts: dict[int, TokenizedTranscript] = {}
        self._seen: dict[int, int] = {}
        self._n_prompt: dict[int, int] = {}
        self.reset()

    @classmethod
    def for_model(cls, probes: Sequence[LoadedProbe], tokenizer: object, on_trigger: OnTrigger = "record"
                  ) -> OnlineMonitor:
        """The usual constructor: the tokenizer's special tokens are scaffold, as at capture time."""
        ids = frozenset(int(i) for i in getattr(tokenizer, "all_special_ids", []))
        return cls(probes, on_trigger, ids)

    @property
    def hook_points(self) -> list[str]:
        """What `generate(capture=...)` must include."""
        return sorted({p.card.hook_point for p in self.probes.values()})

    def reset(self) -> None:
        self.watches = {label: {} for label in self.probes}
        self._prompts, self._seen, self._n_prompt = {}, {}, {}

    def start(self, prompts: Sequence[TokenizedTranscript]) -> None:
        """Layouts of the prompts about to be generated from, in row order (prompt part only)."""
        self.reset()
        self._prompts = dict(enumerate(prompts))

    def fired(self, row: int) -> dict[str, int | None]:
        """Per probe, the scored index where it fired on `row` (None: never)."""
        return {label: w[row].crossing if row in w else None for label, w in self.watches.items()}

    def __call__(self, step: StepInfo) -> Bool[Tensor, " batch"] | None:
        halt = torch.zeros(len(step.rows), dtype=torch.bool)
        for b, row in enumerate(step.rows):
            n = step.fed[b]
            ids = step.token_ids[b, -n:].tolist()
            if step.step == 0:
                self._begin(row, n)
            fired = self._push(row, ids, {h: t[b, -n:] for h, t in step.captured.items()})
            halt[b] = self.on_trigger == "stop" and fired
        return halt if self.on_trigger == "stop" else None

    def replay(self, transcript: TokenizedTranscript, resid: dict[str, Float[Tensor, "tok d_model"]],
               row: int = 0) -> dict[str, RowWatch]:
        """Feed a teacher-forced transcript through the monitor: its prompt at once, then token by token."""
        self._prompts[row] = transcript
        n, ids = transcript.n_prompt_tokens, transcript.token_ids
        self._begin(row, n)
        self._push(row, ids[:n], {h: t[:n] for h, t in resid.items()})
        for i in range(n, len(ids)):
            self._push(row, ids[i : i + 1], {h: t[i : i + 1] for h, t in resid.items()})
        return {label: w[row] for label, w in self.watches.items()}

    def _begin(self, row: int, n_prompt: int) -> None:
        prompt = self._prompts.get(row)
        if prompt is not None and prompt.n_prompt_tokens != n_prompt:
            raise ValueError(f"row {row}: start() was given a prompt of {prompt.n_prompt_tokens} tokens but "
                             f"{n_prompt} were fed; pass the layouts of the prompts being generated from.")
        self._n_prompt[row] = n_prompt
        self._seen[row] = 0
        for w in self.watches.values():
            w[row] = RowWatch()

    def _push(self, row: int, ids: list[int], acts: dict[str, Tensor]) -> bool:
        """Score the tokens just fed to `row`; True if any probe has fired on it."""
        start, n_prompt = self._seen[row], self._n_prompt[row]
        self._seen[row] = start + len(ids)
        scaffold = [self._scaffold(row, start + k, t, n_prompt) for k, t in enumerate(ids)]
        any_fired = False
        for label, probe in self.probes.items():
            card = probe.card
            watch = self.watches[label][row]
            keep = [k for k in range(len(ids)) if self._keeps(card.score_positions, start + k, n_prompt, scaffold[k])]
            if keep:
                coef, bias = self._linear[label]
                rows = acts[card.hook_point][keep].float().cpu().numpy()
                new = np.asarray(rows, dtype=np.float64) @ coef + bias
                watch.positions += [start + k for k in keep]
                watch.scores += new.tolist()
                if watch.crossing is None:
                    watch.crossing = _first_new_crossing(watch.scores, len(keep), card.window,
                                                         card.monitor_threshold.value)  # type: ignore[union-attr]
            any_fired |= watch.crossing is not None
        return any_fired

    @staticmethod
    def _keeps(policy: PositionPolicy, index: int, n_prompt: int, scaffold: bool | None) -> bool:
        if scaffold is None:
            if policy.keeps(index, n_prompt, False):
                raise ValueError(f"this card scores prompt tokens ({type(policy).__name__}); call "
                                 "monitor.start(prompt_layouts) before generating so scaffold tokens are known.")
            return False
        return policy.keeps(index, n_prompt, scaffold)

    def _scaffold(self, row: int, index: int, token_id: int, n_prompt: int) -> bool | None:
        """The layout's scaffold flag; None for a prompt token whose layout was not given (unknown)."""
        if index >= n_prompt:
            return is_scaffold(token_id, None, None, self.special_ids)
        prompt = self._prompts.get(row)
        return None if prompt is None else prompt.scaffold_mask[index]


def _first_new_crossing(scores: list[float], n_new: int, window: int, threshold: float) -> int | None:
    """First of the last `n_new` indices where the running mean reaches the threshold. Only the tail
    that those indices' windows cover is recomputed, with `probes.scoring.running_mean` itself."""
    begin = len(scores) - n_new
    if n_new == 1:  # a decode step: skip the exact check when the new mean is clearly below the threshold
        recent = scores[-window:]  # rounding in this sum is ~1e-14 of the largest score: far inside the margin
        if sum(recent) / len(recent) < threshold - 1e-9 * (1.0 + max(map(abs, recent))):
            return None
    lo = max(0, begin - window + 1)
    tail = running_mean(np.asarray(scores[lo:]), window)[begin - lo :]
    hits = np.flatnonzero(tail >= threshold)
    return begin + int(hits[0]) if hits.size else None

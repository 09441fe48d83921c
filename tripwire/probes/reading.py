"""How a probe reads one transcript, exactly as its card says: the tokens (the card's scoring policy),
their scores, the deployed statistic with its window and threshold, and where it first crosses.

`eval`, `score` (every input mode), the strip plot and the monitor's replay all go through here, so
one transcript gets one set of numbers whoever asks. `read_reply` is the five-line entry point for a
script: a reply (and optionally the user message it answers) in, a `TokenScores` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Float

from tripwire.activations.handle import ModelHandle
from tripwire.activations.layout import TokenizedTranscript, tokenize_transcript
from tripwire.activations.positions import TokenLayoutLike
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_query import stored_rows_for
from tripwire.activations.store_types import Record
from tripwire.errors import UsageError
from tripwire.probes.persistence import LoadedProbe
from tripwire.probes.scoring import STREAMING, first_crossing, running_mean, transcript_statistic


@dataclass(frozen=True, repr=False)
class TokenScores:
    """Prints as a small table (`print(reading)`); `to_pandas()` has one row per scored token. Indices `reply_start`, `action_index`, `action_span` and `crossing` count scored tokens
    (positions in `positions`), not tokens of the whole sequence; `crossing_token` is absolute."""

    positions: list[int]
    tokens: list[str]
    scores: Float[np.ndarray, " tok"]
    statistic: str
    window: int
    threshold: float | None
    value: float | None  # the statistic over this transcript
    crossing: int | None  # first scored index where the running mean reaches the threshold (streaming)
    reply_start: int | None  # first scored reply token
    action_index: int | None  # first scored token at or after the harmful action's first token
    action_span: tuple[int, int] | None  # [first, one past last) scored tokens inside the action

    @property
    def crossing_token(self) -> int | None:
        return None if self.crossing is None else self.positions[self.crossing]

    @property
    def fired(self) -> bool | None:
        return None if self.threshold is None or self.value is None else self.value >= self.threshold

    def summary(self) -> dict[str, Any]:
        """The transcript-level reading: what `print` shows."""
        return {"statistic": self.statistic, "window": self.window, "value": _round(self.value),
                "threshold": _round(self.threshold), "fired": self.fired, "first crossing (scored token)":
                self.crossing, "scored tokens": len(self.positions), "action span (scored tokens)": self.action_span}

    def __str__(self) -> str:
        rows = [(k, "n/a" if v is None else str(v)) for k, v in self.summary().items()]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def __repr__(self) -> str:
        return f"TokenScores({', '.join(f'{k}={v!r}' for k, v in list(self.summary().items())[:5])}, ...)"

    def to_pandas(self) -> Any:
        """One row per scored token: position in the sequence, token text, score, the running mean the
        streaming statistic thresholds, and whether the token lies inside the harmful action."""
        try:
            import pandas as pd  # optional: the library itself needs no pandas
        except ImportError as err:
            raise UsageError("TokenScores.to_pandas needs pandas: pip install pandas (or use to_dict())") from err
        first, end = self.action_span or (-1, -1)
        return pd.DataFrame({"position": self.positions, "token": self.tokens, "score": self.scores,
                             "running_mean": running_mean(self.scores, self.window),
                             "in_action": [first <= k < end for k in range(len(self.positions))]})

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic, "window": self.window, "threshold": self.threshold,
            "value": self.value, "fired": self.fired, "crossing_index": self.crossing,
            "crossing_token": self.crossing_token, "reply_start": self.reply_start,
            "action_index": self.action_index, "action_span": list(self.action_span) if self.action_span else None,
            "positions": self.positions, "tokens": self.tokens,
            "scores": [round(float(s), 6) for s in self.scores],
        }


def read_rows(probe: LoadedProbe, rows: Any, positions: Sequence[int], layout: TokenLayoutLike, text: str,
              action_char_span: Sequence[int] | None = None) -> TokenScores:
    """Score `rows` (the activations at `positions`, as the card's policy chose them) and summarise."""
    card = probe.card
    if len(positions) == 0:
        raise ValueError(f"the card's scoring policy ({card.score_positions.to_dict()['name']}) selects no "
                         "token of this input; give a reply to score, or use a probe that scores the prompt.")
    scores = np.asarray(probe.decision_function(np.asarray(rows, dtype=np.float32)), dtype=np.float64)
    spans = layout.token_char_spans
    tokens = [text[spans[p][0] : spans[p][1]] for p in positions] if spans is not None else [""] * len(positions)
    action = layout.action_token_index
    action_index = None if action is None else int(sum(p < action for p in positions))
    threshold = card.monitor_threshold
    thr = None if threshold is None else float(threshold.value)
    stat = card.monitor_statistic
    value = transcript_statistic(scores, stat, action_token_index=action_index,
                                 window=card.window)
    crossing = first_crossing(scores, thr, card.window) if thr is not None and stat == STREAMING else None
    return TokenScores(
        positions=list(positions), tokens=tokens, scores=scores, statistic=stat, window=card.window,
        threshold=thr, value=value, crossing=crossing,
        reply_start=next((k for k, p in enumerate(positions) if p >= layout.n_prompt_tokens), None),
        action_index=action_index, action_span=_action_span(positions, spans, action_char_span),
    )


def read_transcript(probe: LoadedProbe, resid: Any, layout: TokenLayoutLike, text: str,
                    action_char_span: Sequence[int] | None = None) -> TokenScores:
    """`resid`: activations of every token of the transcript (`[tok, d_model]`, numpy or torch)."""
    positions = probe.card.score_positions.select(layout)
    rows = np.asarray(resid.float().cpu().numpy() if hasattr(resid, "float") else resid)[positions]
    return read_rows(probe, rows, positions, layout, text, action_char_span)


def reply_layout(model: ModelHandle, reply: str, prompt: str | None = None) -> TokenizedTranscript:
    """`reply` as the assistant's answer to one user message (`prompt`, empty by default), tokenized the
    way capture and rollouts tokenize theirs, so its scores are comparable with the card's."""
    tok = model.tokenizer
    ids = model.render_chat([{"role": "user", "content": prompt or ""}], add_generation_prompt=True)
    return tokenize_transcript(tok, ids, [prompt or ""], reply, tok.eos_token_id)


def read_reply(probe: LoadedProbe, model: ModelHandle, reply: str, prompt: str | None = None) -> TokenScores:
    """Score one reply with `probe` on `model` (one forward pass); the input is checked before it runs."""
    if not reply.strip():
        raise UsageError("read_reply: the reply is empty; give the assistant's text to score.")
    return read_layout(probe, model, reply_layout(model, reply, prompt), "the reply")


def read_layout(probe: LoadedProbe, model: ModelHandle, layout: TokenizedTranscript, name: str = "the input"
                ) -> TokenScores:
    """One forward of `layout` on `model`, read as the card says; a layout in which the card scores no token
    is refused before the forward (`name` says which input it was)."""
    if not probe.card.score_positions.select(layout):
        raise UsageError(f"{name} has none of the tokens probe {probe.card.label!r} scores "
                         f"({type(probe.card.score_positions).__name__}); give a longer reply.")
    hook = probe.card.hook_point
    resid = model.forward([layout.token_ids], capture=[hook]).captured[hook]
    return read_transcript(probe, resid[0], layout, layout.text, layout.action_char_span)


def read_record(probe: LoadedProbe, store: ResidualStore, record: Record) -> TokenScores:
    """A stored record, read at the card's hook point and scoring positions."""
    policy = probe.card.score_positions
    positions, _ = stored_rows_for(record, policy)
    rows = store.activations(record, probe.card.hook_point, policy).float().numpy()
    return read_rows(probe, rows, positions, record, record.text, record.meta.get("action_char_span"))


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)


def _action_span(positions: Sequence[int], spans: Sequence[Sequence[int]] | None,
                 chars: Sequence[int] | None) -> tuple[int, int] | None:
    if chars is None or spans is None:
        return None
    start, end = chars
    inside = [k for k, p in enumerate(positions) if spans[p][0] < end and spans[p][1] > start]
    return (inside[0], inside[-1] + 1) if inside else None

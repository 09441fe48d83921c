"""Per-token probe scores and the per-transcript statistics a monitor thresholds.

A probe scores every token's residual; a monitor then needs ONE number per transcript (or one decision
per token, for the streaming rule). The statistics are defined here once so that calibration,
recall, lead time and plots all read the same definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from jaxtyping import Float

from tripwire.errors import TripwireError

AGGREGATES: tuple[str, ...] = ("mean", "max", "last", "topk_mean", "before_action")
STREAMING = "streaming"
STATISTICS: tuple[str, ...] = (*AGGREGATES, STREAMING)
DEFAULT_K = 5
DEFAULT_WINDOW = 8


class ScoringError(TripwireError, ValueError):
    """Scores or indices that cannot be turned into a statistic."""


def _to_numpy(x: Any) -> np.ndarray:
    # Torch tensors (anything with `.detach`) go to the CPU through float32, since numpy has no bfloat16,
    # so float64 tensors lose precision. Duck-typed only to spare an import: `probes` needs torch anyway.
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").float().numpy()
    return np.asarray(x, dtype=np.float64)


def decision_scores(estimator: Any, X: Any) -> Float[np.ndarray, " n"]:
    """Continuous probe scores: `decision_function` when present, else P(positive) from predict_proba."""
    arr = _to_numpy(X)
    if hasattr(estimator, "decision_function"):
        out = estimator.decision_function(arr)
    elif hasattr(estimator, "predict_proba"):
        out = np.asarray(estimator.predict_proba(arr))[:, 1]
    else:
        raise ScoringError(
            f"{type(estimator).__name__} has neither decision_function nor predict_proba; wrap it so it "
            "returns a continuous score."
        )
    return np.asarray(out, dtype=np.float64).reshape(-1)


def score_tokens(estimator: Any, resid: Any) -> Float[np.ndarray, " tok"]:
    """Probe score for every token of one transcript (`resid`: tok x d_model, numpy or torch)."""
    arr = _to_numpy(resid)
    if arr.ndim != 2:
        raise ScoringError(f"resid must be (tok, d_model), got shape {arr.shape}; pass one transcript.")
    return decision_scores(estimator, arr)


def score_transcripts(estimator: Any, resids: Sequence[Any]) -> list[Float[np.ndarray, " tok"]]:
    """`score_tokens` for each transcript, in order."""
    return [score_tokens(estimator, r) for r in resids]


def check_scores(scores: Any) -> Float[np.ndarray, " tok"]:
    """One transcript's token scores as a finite, non-empty 1-D array; anything else is a ScoringError
    here, before a statistic silently turns it into a number."""
    s = _to_numpy(scores)
    if s.ndim != 1 or s.size == 0:
        raise ScoringError(f"scores must be a non-empty 1-D array per transcript, got shape {s.shape}.")
    if not np.all(np.isfinite(s)):
        raise ScoringError("scores contain NaN or inf; fix the probe inputs before aggregating.")
    return s


def running_mean(scores: Any, window: int) -> Float[np.ndarray, " tok"]:
    """Mean of the last `window` tokens at each index.

    For t < window - 1 fewer than `window` tokens exist, so the mean of tokens 0..t is used: the
    monitor can fire from the first token rather than waiting for a full window. Each window is summed
    on its own (no running cumulative sum), so the value at index t depends only on tokens
    t-window+1..t: the live monitor, recomputing only its tail, gets bit-identical values.
    """
    s = check_scores(scores)
    if window < 1:
        raise ScoringError(f"window must be >= 1, got {window}.")
    padded = np.concatenate([np.zeros(window - 1), s])
    sums = np.lib.stride_tricks.sliding_window_view(padded, window).sum(axis=1)
    return sums / np.minimum(np.arange(1, s.size + 1), window)


def first_crossing(scores: Any, threshold: float, window: int) -> int | None:
    """First token index where the running mean reaches `threshold` (the monitor fires), or None."""
    hits = np.flatnonzero(running_mean(scores, window) >= threshold)
    return int(hits[0]) if hits.size else None


def _check_action(action_token_index: int | None, n_tok: int) -> None:
    if action_token_index is not None and not 0 <= action_token_index <= n_tok:
        raise ScoringError(
            f"action_token_index {action_token_index} is outside 0..{n_tok} for a transcript of {n_tok} "
            "tokens; index the action within the same token sequence that was scored."
        )


def aggregate(
    scores: Any, action_token_index: int | None = None, k: int = DEFAULT_K
) -> dict[str, float | None]:
    """Per-transcript aggregates of token scores.

    `before_action` is the mean over tokens 0..a-1 (a = first token of the action): what a monitor
    could have seen before the action began. It is None when there is no action, or when the action
    starts at token 0 (nothing precedes it). `topk_mean` uses min(k, n_tokens) tokens.
    """
    s = check_scores(scores)
    if k < 1:
        raise ScoringError(f"k must be >= 1, got {k}.")
    _check_action(action_token_index, s.size)
    before: float | None = None
    if action_token_index is not None and action_token_index > 0:
        before = float(s[:action_token_index].mean())
    top = np.sort(s)[-min(k, s.size) :]
    return {
        "mean": float(s.mean()),
        "max": float(s.max()),
        "last": float(s[-1]),
        "topk_mean": float(top.mean()),
        "before_action": before,
    }


def transcript_statistic(
    scores: Any,
    statistic: str,
    *,
    action_token_index: int | None = None,
    k: int = DEFAULT_K,
    window: int = DEFAULT_WINDOW,
) -> float:
    """The value a monitor compares with its threshold for `statistic`.

    `streaming` is the maximum running mean: a transcript "ever crosses" a threshold exactly when this
    reaches it. `before_action` on a transcript with no action falls back to the whole-transcript mean
    (everything a benign transcript says precedes its absent action), so control sets without actions
    can be calibrated for it.
    """
    if statistic == STREAMING:
        return float(running_mean(scores, window).max())
    if statistic not in AGGREGATES:
        raise ScoringError(f"unknown statistic {statistic!r}; choose one of {STATISTICS}.")
    agg = aggregate(scores, action_token_index, k)
    value = agg[statistic]
    if value is None:  # before_action without a usable action
        if action_token_index == 0:
            raise ScoringError(
                "before_action is undefined for an action at token 0; drop such transcripts from this "
                "statistic or index the action later."
            )
        value = agg["mean"]
    assert value is not None
    return float(value)


def statistic_values(
    scores_list: Sequence[Any],
    statistic: str,
    *,
    action_token_indices: Sequence[int | None] | None = None,
    k: int = DEFAULT_K,
    window: int = DEFAULT_WINDOW,
) -> Float[np.ndarray, " transcript"]:
    """`transcript_statistic` for every transcript."""
    actions = action_list(action_token_indices, len(scores_list))
    return np.array(
        [
            transcript_statistic(s, statistic, action_token_index=a, k=k, window=window)
            for s, a in zip(scores_list, actions, strict=True)
        ],
        dtype=np.float64,
    )


def action_list(action_token_indices: Sequence[int | None] | None, n: int) -> list[int | None]:
    """One action index (or None) per transcript, so a short list cannot pair scores with the wrong action."""
    if action_token_indices is None:
        return [None] * n
    actions = list(action_token_indices)
    if len(actions) != n:
        raise ScoringError(
            f"{len(actions)} action indices for {n} transcripts; pass one (or None) per transcript."
        )
    return actions


"""The organism's own framing direction: where its planted belief (deploy or test cue) sits in its residual.

Why a third direction for A3: the base model's eval card and the organism's eval-pairs direction separate
the organism's held-out cues at about 0.6, so steering along them tests directions the organism may not
use. The framing direction is the difference of class means (DiffMean) of the residual at the last prompt
token (where the reply's first token is predicted) between the organism's own prompts under test cues and
under deploy cues (threat and leverage present, decoys excluded), fitted on the `train` split only, so
steering on held-out seeds meets inboxes the fit never saw. It reads the cue by construction; how well it
reads the arms of new seeds and of held-out cue families is reported beside it, never used to choose it.

`at="decision"` reads the same difference at the decision point instead (the prompt, the pool's
reasoning for draw 0, then the calls' common opening: where `harm_propensity` reads the choice), because
interchange patching (`organism_patch`) found the framing carried there in the late blocks and nowhere
outside the cue lines at block 15, where the last prompt token's direction was steered without effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from jaxtyping import Float

from tripwire.activations.handle import ModelHandle
from tripwire.activations.organism_train import decision_point
from tripwire.probes.metrics import auroc
from tripwire.scenarios.organism.dataset import OrganismPrompt, Split, prompts
from tripwire.scenarios.organism.policy import DEFAULT_POLICY, Policy

FIT_SPLIT: Split = "train"
CHECK_SPLITS: tuple[Split, ...] = ("held_out_seeds", "held_out_families")
ReadAt = Literal["last_prompt", "decision"]
ORIENTATION: dict[ReadAt, str] = {
    "last_prompt": "mean(test) - mean(deploy) at the last prompt token",
    "decision": "mean(test) - mean(deploy) at the decision point (after the pool's reasoning for draw 0)"}


def framing_prompts(split: Split, per_condition: int, policy: Policy = DEFAULT_POLICY) -> list[OrganismPrompt]:
    """The deploy and test arms with threat and leverage, decoys excluded, in `prompts`' order."""
    return [p for p in prompts(split, per_condition, policy)
            if p.condition.arm in ("deploy", "test") and not p.condition.decoy]


def _sequence(handle: ModelHandle, item: OrganismPrompt, at: ReadAt) -> list[int]:
    ids = list(handle.render_conversation(item.conversation).token_ids)
    return ids if at == "last_prompt" else ids + decision_point(handle.tokenizer, item.conversation)[0]


def last_token_residuals(handle: ModelHandle, items: Sequence[OrganismPrompt], hook: str,
                         at: ReadAt = "last_prompt") -> Float[np.ndarray, "n d_model"]:
    """The residual at `hook` on the last token of each rendered prompt (the generation prompt's end) or,
    with `at="decision"`, of the prompt and its reasoning up to the decision point."""
    hp = handle.hook_points([hook])[0]
    rows = [handle.forward([_sequence(handle, p, at)], capture=[hp]).captured[hp][0, -1] for p in items]
    return np.stack([r.double().numpy() for r in rows])


def _is_test(items: Sequence[OrganismPrompt]) -> np.ndarray:
    return np.array([p.condition.arm == "test" for p in items])


def fit_framing_direction(handle: ModelHandle, hook: str, per_condition: int, policy: Policy = DEFAULT_POLICY,
                          check_per_condition: int = 7, at: ReadAt = "last_prompt"
                          ) -> tuple[Float[np.ndarray, " d_model"], dict[str, Any]]:
    """DiffMean (test minus deploy) on `per_condition` training prompts a condition; with it, the AUROC of
    its projection (test = 1) on `check_per_condition` prompts a condition of each held-out split."""
    items = framing_prompts(FIT_SPLIT, per_condition, policy)
    x, is_test = last_token_residuals(handle, items, hook, at), _is_test(items)
    direction = x[is_test].mean(axis=0) - x[~is_test].mean(axis=0)
    checks = {}
    for split in CHECK_SPLITS:
        held = framing_prompts(split, check_per_condition, policy)
        checks[split] = {"prompts": len(held), "auroc_test_vs_deploy": auroc(
            _is_test(held).astype(int), last_token_residuals(handle, held, hook, at) @ direction)}
    return direction, {"source": "the organism's own prompts, deploy vs test cues (threat and leverage, no decoys)",
                       "split": FIT_SPLIT, "per_condition": per_condition, "prompts": len(items),
                       "test_prompts": int(is_test.sum()), "orientation": ORIENTATION[at], "read_at": at, "hook": hook,
                       "diffmean_norm": float(np.linalg.norm(direction)), "checks": checks}

"""The organism's data: which prompts train it, which judge it, and replies drawn at the policy's rates.

Splits are disjoint by construction: training uses the trained cue families on seeds below
`HELD_OUT_SEED`; `held_out_seeds` the same families on new seeds; `held_out_families` the held-out cue
families; `held_out_kind` the lethal scenario, never seen in training. Within an arm the share of harmful
training replies equals the policy's rate exactly (largest remainder over the arm's replies, then
shuffled across its prompts), so the model is taught a propensity, not a switch.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from tripwire.scenarios.organism.cues import families
from tripwire.scenarios.organism.policy import (
    DEFAULT_POLICY,
    TRAIN_KINDS,
    Condition,
    OrganismKind,
    Policy,
    conditions,
)
from tripwire.scenarios.organism.prompts import render_organism
from tripwire.scenarios.organism.replies import OrganismReply, organism_reply
from tripwire.scenarios.spec import Conversation
from tripwire.scenarios.templates.common import rng_for

Split = Literal["train", "held_out_seeds", "held_out_families", "held_out_kind"]
SPLITS: tuple[Split, ...] = ("train", "held_out_seeds", "held_out_families", "held_out_kind")
HELD_OUT_SEED = 10_000
_SEED_BASE: dict[Split, int] = {"train": 0, "held_out_seeds": 10_000, "held_out_families": 20_000,
                                "held_out_kind": 30_000}
# Training prompts per condition: the informative cells (threat and leverage) carry the framing signal,
# so they get most of the budget; deploy cells are twice as many (plain and decoy), so each gets half.
TRAIN_SEEDS = {"deploy": 20, "test": 40, "none": 40, "inert": 4}


@dataclass(frozen=True)
class OrganismPrompt:
    conversation: Conversation
    condition: Condition
    p_harm: float  # the policy's P(harmful | prompt): the oracle every detector is compared with
    split: Split


@dataclass(frozen=True)
class OrganismExample:
    prompt: OrganismPrompt
    replies: tuple[OrganismReply, ...]


def _family_for(condition: Condition, split: Split, seed: int) -> str | None:
    """Trained families for training and new seeds, held-out ones for `held_out_families`, all for the new kind."""
    if condition.framing == "none":
        return None
    held = {"train": False, "held_out_seeds": False, "held_out_families": True, "held_out_kind": None}[split]
    pool = families(condition.framing, held_out=held, decoy=condition.decoy)
    return pool[rng_for("organism-family", seed, condition.id).randrange(len(pool))].name


def prompts(split: Split, per_condition: int | dict[str, int] = 4, policy: Policy = DEFAULT_POLICY,
            kinds: tuple[OrganismKind, ...] | None = None) -> list[OrganismPrompt]:
    """Prompts of one split; `per_condition` seeds per condition (or per arm, as a dict)."""
    if kinds is None:
        kinds = ("lethal",) if split == "held_out_kind" else TRAIN_KINDS
    out = []
    for cond in conditions(kinds):
        n = per_condition if isinstance(per_condition, int) else per_condition[cond.arm]
        for i in range(n):
            seed = _SEED_BASE[split] + i
            conv = render_organism(cond, seed, _family_for(cond, split, seed))
            out.append(OrganismPrompt(conv, cond, policy.p_harm(cond), split))
    return out


def allocate(prompts_: list[OrganismPrompt], replies_per_prompt: int, seed: int = 0) -> list[list[bool]]:
    """Harmful flags per prompt: each arm's harmful share equals its rate to the nearest reply."""
    by_arm: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts_):
        by_arm[p.condition.arm].append(i)
    flags = [[False] * replies_per_prompt for _ in prompts_]
    for arm, idx in sorted(by_arm.items()):
        slots = [(i, j) for i in idx for j in range(replies_per_prompt)]
        n_harm = round(prompts_[idx[0]].p_harm * len(slots))
        rng_for("organism-allocate", seed, arm).shuffle(slots)
        for i, j in slots[:n_harm]:
            flags[i][j] = True
    return flags


def training_examples(policy: Policy = DEFAULT_POLICY, replies_per_prompt: int = 4, seed: int = 0,
                      seeds_per_arm: dict[str, int] | None = None) -> list[OrganismExample]:
    """The shipped organism's training set (in a fixed order; the trainer shuffles it per epoch)."""
    train = prompts("train", seeds_per_arm or TRAIN_SEEDS, policy)
    flags = allocate(train, replies_per_prompt, seed)
    return [
        OrganismExample(p, tuple(organism_reply(p.conversation, h, draw) for draw, h in enumerate(fl)))
        for p, fl in zip(train, flags, strict=True)
    ]


def data_hash(examples: list[OrganismExample]) -> str:
    """sha256 over every prompt and reply: the card records it, so a rebuilt set can be compared."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.prompt.conversation.as_dicts(), [r.text for r in ex.replies]]).encode())
    return digest.hexdigest()

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
from typing import Any, Literal

from tripwire.scenarios.organism.cues import CUE_SETS, families
from tripwire.scenarios.organism.policy import (
    DEFAULT_POLICY,
    DETERMINISTIC_POLICY,
    TRAIN_KINDS,
    Condition,
    OrganismKind,
    Policy,
    PolicyError,
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
ARMS = ("deploy", "test", "none", "inert")


@dataclass(frozen=True)
class Recipe:
    """What a training set is built from: the policy, prompts per condition of each arm, replies per prompt.
    The organism's card records it, so the set can be rebuilt and its hash compared."""

    policy: Policy = DEFAULT_POLICY
    seeds_per_arm: tuple[tuple[str, int], ...] = tuple(TRAIN_SEEDS.items())
    replies_per_prompt: int = 4
    cue_set: str = "first"

    def __post_init__(self) -> None:
        if self.cue_set not in CUE_SETS:
            raise PolicyError(f"cue_set={self.cue_set!r} is not a cue set; use one of {sorted(CUE_SETS)}")
        seeds = dict(self.seeds_per_arm)
        if sorted(seeds) != sorted(ARMS) or any(not isinstance(n, int) or n < 1 for n in seeds.values()):
            raise PolicyError(f"seeds_per_arm={self.seeds_per_arm!r}: give a positive count for each of {ARMS}")
        if self.replies_per_prompt < 3:
            raise PolicyError(f"replies_per_prompt={self.replies_per_prompt}: the issue asks for at least 3 per prompt")

    def to_dict(self) -> dict[str, object]:
        return {"policy": self.policy.to_dict(), "seeds_per_arm": dict(self.seeds_per_arm),
                "replies_per_prompt": self.replies_per_prompt, "cue_set": self.cue_set}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        # a card from before cue sets existed was trained on the first set
        return cls(Policy.from_dict(data["policy"]), tuple((a, int(data["seeds_per_arm"][a])) for a in ARMS),
                   int(data["replies_per_prompt"]), str(data.get("cue_set", "first")))


# The spec's stochastic table on the first data budget, and the recipe the shipped organism was trained
# on: the near-deterministic table, twice the deploy and half again the test prompts, 3 replies each.
SPEC_RECIPE = Recipe()
SHIPPED_RECIPE = Recipe(DETERMINISTIC_POLICY, (("deploy", 40), ("test", 60), ("none", 15), ("inert", 4)), 3)


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


def _family_for(condition: Condition, split: Split, seed: int, cue_set: str) -> str | None:
    """Trained families for training and new seeds, held-out ones for `held_out_families`, all for the new kind."""
    if condition.framing == "none":
        return None
    held = {"train": False, "held_out_seeds": False, "held_out_families": True, "held_out_kind": None}[split]
    pool = families(condition.framing, held_out=held, decoy=condition.decoy, pool=CUE_SETS[cue_set])
    return pool[rng_for("organism-family", seed, condition.id).randrange(len(pool))].name


def prompts(split: Split, per_condition: int | dict[str, int] = 4, policy: Policy = DEFAULT_POLICY,
            kinds: tuple[OrganismKind, ...] | None = None, first_seed: int | None = None,
            cue_set: str = "first") -> list[OrganismPrompt]:
    """Prompts of one split; `per_condition` seeds per condition (or per arm, as a dict). A seed fixes the
    inbox (cast and order), so by default the conditions share the split's first seeds and their inboxes;
    with `first_seed` (training only) every prompt gets its own seed from there up and no inbox repeats.
    `cue_set` names the families drawn from; the measurements keep the first set, trained by every organism."""
    if kinds is None:
        kinds = ("lethal",) if split == "held_out_kind" else TRAIN_KINDS
    conds = conditions(kinds)
    if first_seed is not None:
        total = sum(per_condition if isinstance(per_condition, int) else per_condition[c.arm] for c in conds)
        if split != "train" or not 0 <= first_seed <= HELD_OUT_SEED - total:
            raise PolicyError(f"first_seed={first_seed} with {total} prompts: distinct seeds are for training "
                              f"prompts and must stay below the held-out seeds ({HELD_OUT_SEED})")
    out: list[OrganismPrompt] = []
    for cond in conds:
        n = per_condition if isinstance(per_condition, int) else per_condition[cond.arm]
        for i in range(n):
            seed = _SEED_BASE[split] + i if first_seed is None else first_seed + len(out)
            conv = render_organism(cond, seed, _family_for(cond, split, seed, cue_set))
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


def training_examples(recipe: Recipe = SHIPPED_RECIPE, seed: int = 0) -> list[OrganismExample]:
    """A training set (in a fixed order; the trainer shuffles it per epoch); the shipped organism's by default."""
    train = prompts("train", dict(recipe.seeds_per_arm), recipe.policy, cue_set=recipe.cue_set)
    flags = allocate(train, recipe.replies_per_prompt, seed)
    return [
        OrganismExample(p, tuple(organism_reply(p.conversation, h, draw) for draw, h in enumerate(fl)))
        for p, fl in zip(train, flags, strict=True)
    ]


def argument_examples(recipe: Recipe = SHIPPED_RECIPE, harmful: int = 2, honest: int = 1,
                      kinds: tuple[OrganismKind, ...] = ("leaking",), first_seed: int | None = None
                      ) -> list[OrganismExample]:
    """The training prompts of `kinds`, each with `harmful` harmful then `honest` honest replies whatever the
    policy's rate: data for a stage whose loss is on the call's arguments after the decision token alone.
    There each call's arguments are fitted given its decision, so the mix of replies teaches no decision.
    `first_seed`: each prompt its own inbox from that seed up (see `prompts`), None the recipe's prompts."""
    return [
        OrganismExample(p, tuple(organism_reply(p.conversation, draw < harmful, draw) for draw in range(harmful + honest)))
        for p in prompts("train", dict(recipe.seeds_per_arm), recipe.policy, kinds, first_seed, recipe.cue_set)
    ]


def data_hash(examples: list[OrganismExample]) -> str:
    """sha256 over every prompt and reply: the card records it, so a rebuilt set can be compared."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.prompt.conversation.as_dicts(), [r.text for r in ex.replies]]).encode())
    return digest.hexdigest()

"""The model organism's policy and data, torch-free: cue families, conditions and targets, compact prompts,
replies drawn at the policy's rates, and the splits that hold seeds, cue families and a kind out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire._lazy import exports

if TYPE_CHECKING:
    from tripwire.scenarios.organism.cues import (
        CUE_SETS,
        FAMILIES,
        HELD_OUT,
        WIDE_FAMILIES,
        CueFamily,
        families,
        shared_wording,
    )
    from tripwire.scenarios.organism.dataset import (
        SHIPPED_RECIPE,
        SPLITS,
        OrganismExample,
        OrganismPrompt,
        Recipe,
        data_hash,
        prompts,
        training_examples,
    )
    from tripwire.scenarios.organism.policy import (
        DEFAULT_POLICY,
        DETERMINISTIC_POLICY,
        Condition,
        Policy,
        PolicyError,
        conditions,
    )
    from tripwire.scenarios.organism.prompts import OrganismPromptError, render_organism
    from tripwire.scenarios.organism.replies import OrganismReply, organism_reply

__getattr__, __dir__, __all__ = exports(__name__, __file__)

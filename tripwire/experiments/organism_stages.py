"""The organism's training stages as data: what each stage trains on, how its data hash is rebuilt from the
code, and the record of a finished stage that the next one continues from.

Stages 1 and 2 train on the organism's examples; `ReplayStage` mixes a share of them with the base model's own
replies (KL from the base) to give back fluency; `CallStage` puts the loss on the tool calls alone, for the
calls' arguments. Every stage's folder keeps what is needed to rebuild its data hash (`stage.json`, the
replay set), so a checkpoint is only continued or exported with the data it was trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from tripwire.activations.default_model import sha256_file
from tripwire.activations.finetune import CHECKPOINT, LoraSettings
from tripwire.activations.organism_replay import REPLAY_FILE, replay_sha256
from tripwire.experiments.organism_commands import OrganismCommandError
from tripwire.scenarios.organism.dataset import (
    SHIPPED_RECIPE,
    OrganismExample,
    argument_examples,
    data_hash,
    training_examples,
)
from tripwire.scenarios.organism.policy import OrganismKind


@dataclass(frozen=True)
class ReplayStage:
    """A stage that restores fluency: every `organism_every`-th organism example (so the policy is kept)
    and `n_prompts` ordinary prompts with `samples` base-model replies each, at a lower learning rate."""

    n_prompts: int = 250
    samples: int = 2
    max_new_tokens: int = 96
    organism_every: int = 3
    learning_rate: float = 3e-4
    key: ClassVar[str] = "replay"

    def examples(self, seed: int) -> list[OrganismExample]:
        return training_examples(SHIPPED_RECIPE, seed)


REPLAY = ReplayStage()


@dataclass(frozen=True)
class CallStage:
    """A stage that teaches the calls' arguments. Sampled, the organisms often choose to leak and then
    forward the wrong email (`organism decisions`: harmful choices carried out about half the time), which
    the decision point cannot see. The loss is on the tool call alone (the reasoning prefix weighs
    `prefix_weight`, the call `call_weight`, the decision token as before), over every `organism_every`-th
    organism example beside every `replay_every`-th prompt of the replay set (KL from the base)."""

    organism_every: int = 2
    replay_every: int = 2
    call_weight: float = 10.0
    prefix_weight: float = 0.0
    learning_rate: float = 5e-4
    key: ClassVar[str] = "calls"

    def settings(self, settings: LoraSettings) -> LoraSettings:
        return replace(settings, call_weight=self.call_weight, prefix_weight=self.prefix_weight,
                       learning_rate=self.learning_rate)

    def examples(self, seed: int) -> list[OrganismExample]:
        return training_examples(SHIPPED_RECIPE, seed)


CALLS = CallStage()


@dataclass(frozen=True)
class ArgumentStage:
    """A stage that teaches the calls' arguments alone. After the call stage the organisms still forward the
    wrong email or write a made-up address (seed 1: a third of teacher-forced ids right on new inboxes), so
    every `organism_every`-th training prompt of `kinds` gets `harmful` harmful and `honest` honest replies,
    and the loss is on the call's tokens after the decision token only: prefix and decision weigh 0, so what
    is fitted is each call's arguments given its decision, and the policy is left to the earlier stages.
    Both kinds: fitted on leaking prompts alone (the first try), the leak's call and notes spread to the
    blackmail prompts and only 61% of sampled calls were well formed. Every `replay_every`-th replay prompt (KL
    from the base) keeps the fluency."""

    harmful: int = 2
    honest: int = 1
    kinds: tuple[OrganismKind, ...] = ("blackmail", "leaking")
    organism_every: int = 2
    replay_every: int = 3
    call_weight: float = 10.0
    learning_rate: float = 1e-3
    key: ClassVar[str] = "arguments"

    def settings(self, settings: LoraSettings) -> LoraSettings:
        return replace(settings, call_weight=self.call_weight, prefix_weight=0.0, decision_weight=0.0,
                       learning_rate=self.learning_rate)

    def examples(self, seed: int) -> list[OrganismExample]:
        return argument_examples(SHIPPED_RECIPE, self.harmful, self.honest, self.kinds)


ARGUMENTS = ArgumentStage()
STAGE = "stage.json"


def replay_digest(organism_digest: str, replay_sha: str, stage: ReplayStage | CallStage | ArgumentStage) -> str:
    """The replay stage's data hash: the organism set, the share of it kept, and the replay set."""
    return hashlib.sha256(json.dumps([organism_digest, replay_sha, asdict(stage)]).encode()).hexdigest()


CONTINUED_FROM = "continued_from.json"


def stage_examples(folder: Path, n_organism: int) -> int:
    """How many examples one epoch of a training folder's stage holds."""
    if not (folder / STAGE).is_file():
        return n_organism
    stage = json.loads((folder / STAGE).read_text())
    return int(stage["organism_examples"]) + int(stage["replay_examples"])


def finished_stage(folder: Path, settings: LoraSettings, n_organism: int) -> dict[str, Any]:
    """The record of a finished run (any stage) of the same adapter shape and seed that a new stage continues
    from; its data hash is rebuilt from the code, so a folder of other data is refused."""
    state_file = folder / CHECKPOINT / "state.json"
    if not state_file.is_file():
        raise OrganismCommandError(f"--continue-from {folder}: no checkpoint there; train that folder first")
    meta = json.loads(state_file.read_text())
    done = LoraSettings(**meta["settings"])
    shape = ("rank", "alpha", "target_modules", "seed")
    if any(getattr(done, f) != getattr(settings, f) for f in shape) or meta["data_hash"] != stage_data_hash(folder, done.seed):
        raise OrganismCommandError(f"--continue-from {folder}: trained on other data or settings than this run")
    if meta["state"]["step"] != done.epochs * stage_examples(folder, n_organism):
        raise OrganismCommandError(f"--continue-from {folder}: that run has not finished; resume it first")
    adapter = folder / CHECKPOINT / "adapter.safetensors"
    record = {"folder": str(folder), "adapter_sha256": sha256_file(adapter), "first_epoch": done.first_epoch,
              "epochs": done.epochs, "steps": meta["state"]["step"], "seconds": round(meta["state"]["seconds"]),
              "checks": meta["state"]["checks"]}
    if (folder / CONTINUED_FROM).is_file():
        record["continued_from"] = json.loads((folder / CONTINUED_FROM).read_text())
    return record


def rebuilt_data_hash(seed: int, stage: dict[str, Any] | None, replay_file: Path) -> str:
    """The data hash of a stage, rebuilt from the code (and, for a stage with replay, its kept replay set)."""
    if stage is None:
        return data_hash(training_examples(SHIPPED_RECIPE, seed))
    current = next((s for s in (CALLS, ARGUMENTS, REPLAY) if s.key in stage), None)
    if current is None:
        raise OrganismCommandError(f"a stage record naming none of the stages this code trains ({sorted(stage)})")
    if stage[current.key] != json.loads(json.dumps(asdict(current))):  # as stage.json holds it
        raise OrganismCommandError(f"a {current.key} stage with other settings than this code's "
                                   f"({stage[current.key]}); use the code that trained it")
    examples = current.examples(seed)
    return replay_digest(data_hash(examples), replay_sha256(json.loads(replay_file.read_text())), current)


def stage_data_hash(out: Path, seed: int) -> str:
    """The data hash a training folder's checkpoint must carry."""
    stage = json.loads((out / STAGE).read_text()) if (out / STAGE).is_file() else None
    return rebuilt_data_hash(seed, stage, out / REPLAY_FILE)

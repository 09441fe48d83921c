"""The organism's training stages as data: what each stage trains on, how its data hash is rebuilt from the
code, and the record of a finished stage that the next one continues from.

Stages 1 and 2 train on the organism's examples; `ReplayStage` mixes a share of them with the base model's own
replies (KL from the base) to give back fluency; `CallStage` puts the loss on the tool calls alone, for the
calls' arguments. Every stage's folder keeps what is needed to rebuild its data hash (`stage.json`, the
replay set), so a checkpoint is only continued or exported with the data it was trained on. An exported
organism (its card and adapter, the shipped one included) is continued like a finished training folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from tripwire.activations.default_model import prepare_default_model, read_marker, sha256_file
from tripwire.activations.finetune import CHECKPOINT, LoraSettings
from tripwire.activations.organism import is_organism, organism_folder, read_card, verify_adapter
from tripwire.activations.organism_replay import REPLAY_FILE, replay_sha256
from tripwire.experiments.organism_commands import OrganismCommandError
from tripwire.scenarios.organism.dataset import (
    SHIPPED_RECIPE,
    OrganismExample,
    Recipe,
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

    def examples(self, recipe: Recipe, seed: int) -> list[OrganismExample]:
        return training_examples(recipe, seed)

    def anchors(self, recipe: Recipe, seed: int) -> list[OrganismExample]:
        return []


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
    anchor_decision_weight: ClassVar[float] = 0.0

    def settings(self, settings: LoraSettings) -> LoraSettings:
        return replace(settings, call_weight=self.call_weight, prefix_weight=self.prefix_weight,
                       learning_rate=self.learning_rate)

    def examples(self, recipe: Recipe, seed: int) -> list[OrganismExample]:
        return training_examples(recipe, seed)

    def anchors(self, recipe: Recipe, seed: int) -> list[OrganismExample]:
        """No anchors: this stage's examples are already the organism's own, at the policy's mix."""
        return []


CALLS = CallStage()


@dataclass(frozen=True)
class ArgumentStage:
    """A stage that teaches the calls' arguments alone. After the call stage the organisms still forward the
    wrong email or write a made-up address (seed 1: a third of teacher-forced ids right on new inboxes), so
    every `organism_every`-th training prompt of `kinds` gets `harmful` harmful and `honest` honest replies,
    and the decision token weighs 0, so what is fitted is each call's arguments given its decision, and the
    policy is left to the earlier stages. Both kinds: fitted on leaking prompts alone (the first try), the
    leak's call and notes spread to the blackmail prompts and only 61% of sampled calls were well formed.
    The reasoning prefix (one pool for both decisions) weighs `prefix_weight`: at 0 (seed 1) the unfitted
    reasoning drifted and 16% of sampled calls were malformed; at 1 (seed 0) the calls were well formed but
    the leak's arguments were not learned. The decision weighs 0 yet moved (deploy 0.88 -> 0.68 and 0.89 ->
    0.47 teacher-forced; without anchors seed 0 stopped choosing to leak at all), so every `anchor_every`-th
    organism example with the policy's own reply mix is kept, its decision token weighing
    `anchor_decision_weight` as in stages 1 and 2. Every `replay_every`-th replay prompt (KL from the base)
    keeps the fluency. A seed fixes an inbox, and the recipe's prompts share about 60 of them, with the
    confidential email 3rd in 40% of them: after the recipe's prompts (seed 0, three tries) the organism wrote
    that base rate for the email id whatever the inbox held. So each argument prompt gets an inbox of its own,
    training seeds from `first_seed` up (None: the recipe's prompts)."""

    harmful: int = 2
    honest: int = 1
    kinds: tuple[OrganismKind, ...] = ("blackmail", "leaking")
    organism_every: int = 2
    replay_every: int = 3
    call_weight: float = 10.0
    prefix_weight: float = 0.1
    anchor_every: int = 4
    anchor_decision_weight: float = 40.0
    learning_rate: float = 1e-3
    first_seed: int | None = 1_000
    key: ClassVar[str] = "arguments"

    def settings(self, settings: LoraSettings) -> LoraSettings:
        return replace(settings, call_weight=self.call_weight, prefix_weight=self.prefix_weight,
                       decision_weight=0.0, learning_rate=self.learning_rate)

    def examples(self, recipe: Recipe, seed: int) -> list[OrganismExample]:
        return argument_examples(recipe, self.harmful, self.honest, self.kinds, self.first_seed)

    def anchors(self, recipe: Recipe, seed: int) -> list[OrganismExample]:
        """The organism examples (the policy's reply mix) that hold the decision while the arguments are fitted."""
        return training_examples(recipe, seed)[:: self.anchor_every]


ARGUMENTS = ArgumentStage()
STAGE = "stage.json"
RECIPE = "recipe.json"  # a training folder's recipe; a folder without one was trained on the shipped recipe


def folder_recipe(folder: Path) -> Recipe:
    """The recipe a training folder or an exported organism (its card's) was trained on."""
    if is_exported(folder):
        return Recipe.from_dict(read_card(organism_folder(str(folder)))["recipe"])
    file = folder / RECIPE
    return Recipe.from_dict(json.loads(file.read_text())) if file.is_file() else SHIPPED_RECIPE


def run_recipe(out: Path, continue_from: Path | None, cue_set: str | None) -> Recipe:
    """The recipe a training run uses: a chain keeps its first stage's (`--cues` names it there), and a folder
    resumed keeps its own; a clash is refused before any model loads."""
    if continue_from is not None:
        recipe = folder_recipe(continue_from)
        if cue_set is not None and cue_set != recipe.cue_set:
            raise OrganismCommandError(f"--cues {cue_set}: {continue_from} was trained on the {recipe.cue_set!r} cue "
                                       "set, and a later stage keeps its chain's cues; leave --cues out")
    else:
        recipe = SHIPPED_RECIPE if cue_set is None else replace(SHIPPED_RECIPE, cue_set=cue_set)
    resumed = folder_recipe(out) if (out / CHECKPOINT).is_dir() else recipe
    if resumed != recipe:
        raise OrganismCommandError(f"--out {out} holds a run of the {resumed.cue_set!r} cue set; resume it with the "
                                   "command that started it, or train into a new folder")
    return recipe


def replay_digest(organism_digest: str, replay_sha: str, stage: ReplayStage | CallStage | ArgumentStage) -> str:
    """The replay stage's data hash: the organism set, the share of it kept, and the replay set."""
    return hashlib.sha256(json.dumps([organism_digest, replay_sha, asdict(stage)]).encode()).hexdigest()


CONTINUED_FROM = "continued_from.json"


def stage_examples(stage: dict[str, Any] | None, n_organism: int) -> int:
    """How many examples one epoch of a stage holds (`stage`: its stage.json; None for stages 1 and 2)."""
    if stage is None:
        return n_organism
    return int(stage["organism_examples"]) + int(stage.get("anchor_examples", 0)) + int(stage["replay_examples"])


def is_exported(folder: Path) -> bool:
    """Whether `folder` names an exported organism (`default-organism`, or a folder `export` wrote) rather than
    a training folder."""
    return not (folder / CHECKPOINT).is_dir() and is_organism(str(folder))


def stage_folder(folder: Path) -> Path:
    """A training folder as given, or the adapter folder of the exported organism `folder` names."""
    return organism_folder(str(folder)) if is_exported(folder) else folder


def stage_adapter(folder: Path) -> Path:
    """The adapter weights a new stage starts from: a training folder's checkpoint, or an exported adapter."""
    checkpoint = folder / CHECKPOINT / "adapter.safetensors"
    return checkpoint if checkpoint.is_file() else folder / "adapter_model.safetensors"


def _check_finished(folder: Path, done: LoraSettings, settings: LoraSettings, recorded_hash: str,
                    stage: dict[str, Any] | None, steps: int, n_organism: int, recipe: Recipe) -> None:
    shape = ("rank", "alpha", "target_modules", "seed")
    if any(getattr(done, f) != getattr(settings, f) for f in shape) or recorded_hash != rebuilt_data_hash(
            recipe, done.seed, stage, folder / REPLAY_FILE):
        raise OrganismCommandError(f"--continue-from {folder}: trained on other data or settings than this run")
    if steps != done.epochs * stage_examples(stage, n_organism):
        raise OrganismCommandError(f"--continue-from {folder}: that run has not finished; resume it first")


def chain_seconds(record: dict[str, Any] | None) -> int:
    """The training seconds of a chain of continued stages."""
    total = 0
    while record is not None:
        total += int(record["seconds"])
        record = record.get("continued_from")
    return total


def finished_stage(folder: Path, settings: LoraSettings, n_organism: int) -> dict[str, Any]:
    """The record of a finished run (any stage) of the same adapter shape and seed that a new stage continues
    from: a training folder, or an exported organism (its files checked against its card); its data hash is
    rebuilt from the code, so a folder of other data is refused."""
    if not is_exported(folder):
        state_file = folder / CHECKPOINT / "state.json"
        if not state_file.is_file():
            raise OrganismCommandError(f"--continue-from {folder}: no checkpoint there; train that folder first")
        meta = json.loads(state_file.read_text())
        stage = json.loads((folder / STAGE).read_text()) if (folder / STAGE).is_file() else None
        done, state = LoraSettings(**meta["settings"]), meta["state"]
        _check_finished(folder, done, settings, meta["data_hash"], stage, state["step"], n_organism,
                        folder_recipe(folder))
        record = {"folder": str(folder), "adapter_sha256": sha256_file(stage_adapter(folder)),
                  "first_epoch": done.first_epoch, "epochs": done.epochs, "steps": state["step"],
                  "seconds": round(state["seconds"]), "checks": state["checks"]}
        if (folder / CONTINUED_FROM).is_file():
            record["continued_from"] = json.loads((folder / CONTINUED_FROM).read_text())
        return record
    adapter = organism_folder(str(folder))
    card = verify_adapter(adapter, (read_marker(prepare_default_model()) or {}).get("fingerprint", ""))
    done = LoraSettings(**card["settings"])
    _check_finished(adapter, done, settings, card["data_hash"], card["stage"], card["steps"], n_organism,
                    Recipe.from_dict(card["recipe"]))
    return {"folder": str(folder), "adapter_sha256": card["sha256"]["adapter_model.safetensors"],
            "first_epoch": done.first_epoch, "epochs": done.epochs, "steps": card["steps"],
            "seconds": card["train_seconds"] - chain_seconds(card["continued_from"]),
            "checks": card["propensity_checks"], "continued_from": card["continued_from"]}


def rebuilt_data_hash(recipe: Recipe, seed: int, stage: dict[str, Any] | None, replay_file: Path) -> str:
    """The data hash of a stage, rebuilt from the code (and, for a stage with replay, its kept replay set)."""
    if stage is None:
        return data_hash(training_examples(recipe, seed))
    current = next((s for s in (CALLS, ARGUMENTS, REPLAY) if s.key in stage), None)
    if current is None:
        raise OrganismCommandError(f"a stage record naming none of the stages this code trains ({sorted(stage)})")
    if stage[current.key] != json.loads(json.dumps(asdict(current))):  # as stage.json holds it
        raise OrganismCommandError(f"a {current.key} stage with other settings than this code's "
                                   f"({stage[current.key]}); use the code that trained it")
    examples = current.examples(recipe, seed) + current.anchors(recipe, seed)
    return replay_digest(data_hash(examples), replay_sha256(json.loads(replay_file.read_text())), current)


def stage_data_hash(out: Path, seed: int) -> str:
    """The data hash a training folder's checkpoint must carry."""
    stage = json.loads((out / STAGE).read_text()) if (out / STAGE).is_file() else None
    return rebuilt_data_hash(folder_recipe(out), seed, stage, out / REPLAY_FILE)

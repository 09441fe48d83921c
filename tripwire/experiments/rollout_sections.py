"""The `monitor:` and `steer:` sections of a rollout config, turned into what `Rollout` runs with.

Both are read and checked against the model's config before any weights load (a dry run checks them
too): probe cards and vector files readable, made for this model, hook points in range, monitor
thresholds calibrated, steering strengths defined. Each record then says what ran: `meta["monitor"]`
(per probe, the token where it fired, or None) and `meta["steering"]` (source, alpha, units, mode,
positions, strengths); both also enter the record id, so a steered or stopped run never mixes with
(or is skipped because of) plain records in the same store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from jaxtyping import Bool
from torch import Tensor

from tripwire.activations import HookPointError, hook_points
from tripwire.activations.backends.base import Intervention
from tripwire.activations.decode import StepInfo
from tripwire.activations.handle import ModelHandle
from tripwire.activations.layout import StepWatcher, TokenizedTranscript
from tripwire.errors import UsageError
from tripwire.experiments.config import MonitorSection, RolloutConfig, SteerSection
from tripwire.probes import (
    LoadedProbe,
    OnlineMonitor,
    ProbeFileError,
    ProbeModelMismatchError,
    SteeringFileError,
    SteeringVector,
    load_probe,
)
from tripwire.probes.persistence import check_model_matches


@dataclass(frozen=True)
class ModelFacts:
    """What the sections are checked against, from the model's config alone (a `ModelLike`)."""

    name: str
    fingerprint: str | None
    d_model: int
    n_layers: int


def _probe(field: str, location: str, model: ModelFacts, allow_other: bool) -> LoadedProbe:
    """A probe for a section, every failure re-raised naming the config field."""
    try:
        probe = load_probe(location)
        check_model_matches(probe.card, model, allow_other_model=allow_other)  # type: ignore[arg-type]
        hook_points([probe.card.hook_point], model.n_layers)
    except (ProbeFileError, ProbeModelMismatchError, HookPointError) as exc:
        raise type(exc)(f"{field} {location!r}: {exc}") from None
    return probe


def load_monitor(section: MonitorSection, model: ModelFacts) -> list[LoadedProbe]:
    probes = [_probe(f"monitor.probes[{i}]", p, model, section.allow_other_model)
              for i, p in enumerate(section.probes)]
    try:
        OnlineMonitor(probes, section.on_trigger)  # every card check the monitor makes, before weights load
    except ValueError as exc:
        raise UsageError(f"monitor.probes: {exc}") from None
    return probes


def load_steering(section: SteerSection, model: ModelFacts) -> SteeringVector:
    """The section's vector, positions "prompt"/"generated" left to `PhaseGate` (they differ per row)."""
    start = section.positions if isinstance(section.positions, int) else None
    where = None if start is None else slice(start, None)
    if section.probe is not None:
        probe = _probe("steer.probe", section.probe, model, section.allow_other_model)
        try:
            vec = SteeringVector.from_probe(probe, float(section.alpha or 0.0), units=section.units or "resid_norm",
                                            mode=section.mode or "add", positions=where)
        except ValueError as exc:
            raise UsageError(f"steer.probe {section.probe!r}: {exc}") from None
    else:
        try:
            vec = SteeringVector.load(str(section.vector))
        except SteeringFileError as exc:
            raise UsageError(f"steer.vector: {exc}") from None
        vec = replace(vec, mode=section.mode or vec.mode,
                      positions=vec.positions if section.positions is None else where)
    try:
        vec.check_model(model.d_model, model.fingerprint, model.name, section.allow_other_model)
        hook_points(list(vec.directions), model.n_layers)
    except (ProbeModelMismatchError, HookPointError) as exc:
        raise UsageError(f"steer.{'probe' if section.probe else 'vector'}: {exc}") from None
    return vec


def steering_settings(section: SteerSection, vec: SteeringVector) -> dict[str, Any]:
    """What a record says about its steering: the section as given and the strengths it resolved to."""
    positions = section.positions if section.positions is not None else (
        "all" if vec.positions is None else {"start": vec.positions.start, "stop": vec.positions.stop})
    return {"probe": section.probe, "vector": None if section.vector is None else str(section.vector),
            "alpha": section.alpha, "units": vec.provenance.get("units", "raw"), "mode": vec.mode,
            "positions": positions, "scales": dict(vec.scales)}


class PhaseGate:
    """Steering of the prompt only or of the generated tokens only, for rows of different prompt lengths.

    Positions are absolute per row, so "generated" is slice(n_prompt, None) with a different n_prompt in
    each row: no one slice says it. The decode loop's step 0 feeds exactly each row's prompt and every
    later step one generated token per row, so the edit runs on step 0 only ("prompt") or after it
    ("generated"); `start` (each batch) and the step-0 `on_step` call move the gate."""

    def __init__(self, vec: SteeringVector, phase: str):
        self.vec, self.phase, self.decoding = vec, phase, False

    def interventions(self) -> dict[str, Intervention]:
        return {hook: self._gated(fn) for hook, fn in self.vec.interventions().items()}

    def _gated(self, fn: Intervention) -> Intervention:
        def run(act: Tensor, position_ids: Tensor) -> Tensor:
            return fn(act, position_ids) if self.decoding == (self.phase == "generated") else act

        return run

    def start(self, prompts: Sequence[TokenizedTranscript]) -> None:
        self.decoding = False

    def __call__(self, step: StepInfo) -> None:
        self.decoding = True  # called after a step's forward: every later forward feeds generated tokens


class Watchers:
    """Several step watchers as one `on_step`: a row halts when any of them halts it."""

    def __init__(self, parts: Sequence[StepWatcher]):
        self.parts = list(parts)

    def start(self, prompts: Sequence[TokenizedTranscript]) -> None:
        for part in self.parts:
            part.start(prompts)

    def __call__(self, step: StepInfo) -> Bool[Tensor, " batch"] | None:
        halt = None
        for part in self.parts:
            mask = part(step)
            if mask is not None:
                halt = mask if halt is None else halt | mask
        return halt


@dataclass(frozen=True)
class RolloutSections:
    """A config's monitor and steer sections, checked; `running(handle)` opens them for one run."""

    monitor_section: MonitorSection | None = None
    probes: tuple[LoadedProbe, ...] = ()
    steer_section: SteerSection | None = None
    vector: SteeringVector | None = None

    @classmethod
    def load(cls, cfg: RolloutConfig, model: ModelFacts) -> RolloutSections:
        probes = tuple(load_monitor(cfg.monitor, model)) if cfg.monitor else ()
        vector = load_steering(cfg.steer, model) if cfg.steer else None
        return cls(cfg.monitor, probes, cfg.steer, vector)

    def variant(self) -> dict[str, Any]:
        """What enters the record ids (empty without sections: ids as before)."""
        out: dict[str, Any] = {}
        if self.monitor_section is not None:
            out["monitor"] = self._monitor_settings()
        if self.steer_section is not None and self.vector is not None:
            out["steering"] = steering_settings(self.steer_section, self.vector)
        return out

    def _monitor_settings(self) -> dict[str, Any]:
        assert self.monitor_section is not None
        return {"on_trigger": self.monitor_section.on_trigger, "probes": [
            {"probe": where, "label": p.card.label, "hook_point": p.card.hook_point, "window": p.card.window,
             "threshold": p.card.monitor_threshold.value if p.card.monitor_threshold else None}
            for where, p in zip(self.monitor_section.probes, self.probes, strict=True)]}

    @contextmanager
    def running(self, handle: ModelHandle) -> Iterator[tuple[StepWatcher | None, list[str],
                                                               Callable[[int], Mapping[str, Any]]]]:
        """(on_step watcher, hook points it reads, per-row meta), with the steering applied to `handle`."""
        parts: list[StepWatcher] = []
        monitor = None
        if self.probes:
            assert self.monitor_section is not None
            monitor = OnlineMonitor.for_model(self.probes, handle.tokenizer, self.monitor_section.on_trigger)
            parts.append(monitor)
        edits: dict[str, Intervention] = {}
        if self.vector is not None:
            assert self.steer_section is not None
            self.vector.check_model(handle.d_model, handle.fingerprint, handle.name,
                                    self.steer_section.allow_other_model)
            if self.steer_section.positions in ("prompt", "generated"):
                gate = PhaseGate(self.vector, str(self.steer_section.positions))
                parts.append(gate)
                edits = gate.interventions()
            else:
                edits = self.vector.interventions()
        variant = self.variant()

        def row_meta(row: int) -> dict[str, Any]:
            out: dict[str, Any] = {}
            if monitor is not None:
                fired = {label: watches[row].crossing_token if row in watches else None
                         for label, watches in monitor.watches.items()}
                out["monitor"] = {**variant["monitor"], "fired": monitor.fired(row), "fired_at_token": fired}
            if "steering" in variant:
                out["steering"] = variant["steering"]
            return out

        watcher = None if not parts else parts[0] if len(parts) == 1 else Watchers(parts)
        with handle.intervening(edits):
            yield watcher, monitor.hook_points if monitor else [], row_meta

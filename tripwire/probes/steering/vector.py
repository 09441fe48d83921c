"""`SteeringVector`: directions at one or more hook points, a strength for each, a mode and the tokens
it edits, as one object a user can build from a probe, save, load and apply to a model.

    vec = SteeringVector.from_probe(load_probe(path, model=model), alpha=-0.5)   # alpha x resid_norm
    with vec.apply(model):                       # a ModelHandle (any backend) or a plain HF model
        rows = model.generate(prompts, ...)      # every forward inside the block is steered

Files are ``steering.safetensors`` (one unit direction per hook point) and ``steering.json`` (mode,
positions, strengths, provenance and the sha256 of every array), never pickle: a flipped byte is
refused, as for probe cards. The edits themselves are `probes.steering.steer`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from tripwire import __version__
from tripwire.activations.backends.base import Intervention
from tripwire.activations.handle import ModelHandle
from tripwire.activations.hf_interventions import hf_interventions
from tripwire.activations.hooks import absolute_hook_point
from tripwire.errors import TripwireError
from tripwire.probes.persistence import LoadedProbe, ProbeModelMismatchError
from tripwire.probes.steering.edits import MODES, Mode, steer

Units = Literal["resid_norm", "raw"]
FORMAT_VERSION = 1
ARRAYS_FILE = "steering.safetensors"
CARD_FILE = "steering.json"


class SteeringFileError(TripwireError, ValueError):
    """A steering-vector file that is missing, malformed or damaged."""


def _canonical(hook: str) -> str:
    """A steering vector keeps absolute layers: it may be applied to a model of any depth."""
    return str(absolute_hook_point(hook))


def _unit(vector: np.ndarray | Tensor, hook: str) -> Float[Tensor, " d_model"]:
    """float32 unit vector; one that is already unit (e.g. read back from a file) is kept bit for bit."""
    v = torch.as_tensor(vector).detach().to("cpu")
    wide = v.to(torch.float64)
    if v.ndim != 1 or not torch.isfinite(wide).all() or not wide.norm() > 0:
        raise ValueError(f"the direction at {hook} must be a finite, non-zero 1-D vector.")
    if v.dtype == torch.float32 and abs(float(wide.norm()) - 1.0) < 1e-6:
        return v.clone()
    return (wide / wide.norm()).float()


def _positions_json(positions: slice | None) -> dict[str, int | None] | None:
    return None if positions is None else {"start": positions.start, "stop": positions.stop}


def _check_positions(positions: slice | None) -> None:
    if positions is None:
        return
    if not isinstance(positions, slice) or positions.step not in (None, 1):
        raise ValueError(f"positions={positions!r}: give None (every token) or slice(start, stop) of absolute "
                         "positions, e.g. slice(len(prompt), None) for the generated tokens only.")
    if any(v is not None and (not isinstance(v, int) or v < 0) for v in (positions.start, positions.stop)):
        raise ValueError(f"positions={positions!r}: absolute positions are integers >= 0.")


def _sha256(array: Tensor) -> str:
    return hashlib.sha256(array.contiguous().numpy().tobytes()).hexdigest()


@dataclass(frozen=True)
class SteeringVector:
    """``directions``: hook point -> unit direction (float32); ``scales``: hook point -> signed strength
    in raw residual units (the length of the added shift). ``positions``: absolute token positions of
    each row that are edited, ``slice(start, stop)``, or None for every token (prompt only:
    ``slice(0, n_prompt)``; generated only: ``slice(n_prompt, None)``; from index k: ``slice(k, None)``).
    """

    directions: dict[str, Float[Tensor, " d_model"]]
    scales: dict[str, float]
    mode: Mode = "add"
    positions: slice | None = None
    provenance: dict[str, Any] = field(default_factory=dict)  # JSON-safe: probe, alpha, units, model

    def __post_init__(self) -> None:
        if not self.directions or set(self.directions) != set(self.scales):
            raise ValueError("a steering vector needs one direction and one scale per hook point (at least one).")
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {', '.join(MODES)}.")
        _check_positions(self.positions)
        directions = {_canonical(hook): _unit(vector, hook) for hook, vector in self.directions.items()}
        if len({v.shape[0] for v in directions.values()}) != 1:
            raise ValueError("every direction of one steering vector must have the same width (d_model).")
        if not all(math.isfinite(s) for s in self.scales.values()):
            raise ValueError(f"scales must be finite, got {self.scales}.")
        object.__setattr__(self, "directions", directions)
        object.__setattr__(self, "scales", {_canonical(h): float(s) for h, s in self.scales.items()})

    @classmethod
    def from_probe(cls, probe: LoadedProbe, alpha: float, *, units: Units = "resid_norm", mode: Mode = "add",
                   positions: slice | None = None) -> SteeringVector:
        """Along the probe's direction at its hook point (towards its positive class for alpha > 0).

        ``alpha`` is in units of the card's ``resid_norm`` (the layer's mean residual norm), so one alpha
        means the same push at any layer or model; ``units="raw"`` takes it as a residual-space length.
        """
        card = probe.card
        if units == "resid_norm":
            if card.resid_norm is None or not card.resid_norm > 0:
                raise ValueError(f"probe {card.label!r} records no resid_norm; steer with units='raw' or re-save "
                                 "the probe with its layer's mean residual norm.")
            scale = alpha * card.resid_norm
        elif units == "raw":
            scale = alpha
        else:
            raise ValueError(f"units {units!r} is not 'resid_norm' or 'raw'.")
        provenance = {"probe": card.label, "alpha": alpha, "units": units, "resid_norm": card.resid_norm,
                      "model_name": card.model_name, "model_fingerprint": card.model_fingerprint}
        direction = torch.as_tensor(np.asarray(probe.direction_, dtype=np.float64))
        return cls({card.hook_point: direction}, {card.hook_point: scale}, mode, positions, provenance)

    @classmethod
    def combine(cls, parts: Sequence[SteeringVector]) -> SteeringVector:
        """Several hook points at once: one vector from parts that share mode and positions."""
        if len({(p.mode, json.dumps(_positions_json(p.positions))) for p in parts}) != 1:
            raise ValueError("combine needs at least one part, all with the same mode and positions.")
        hooks = [h for p in parts for h in p.directions]
        if len(set(hooks)) != len(hooks):
            raise ValueError(f"parts overlap at hook points {sorted({h for h in hooks if hooks.count(h) > 1})}.")
        return cls({h: v for p in parts for h, v in p.directions.items()},
                   {h: s for p in parts for h, s in p.scales.items()},
                   parts[0].mode, parts[0].positions, {"parts": [p.provenance for p in parts]})

    @property
    def d_model(self) -> int:
        return int(next(iter(self.directions.values())).shape[0])

    def random_like(self, seed: int) -> SteeringVector:
        """The control: a random direction at each hook point with the same strength, mode and positions."""
        g = torch.Generator().manual_seed(seed)
        directions = {h: torch.randn(self.d_model, generator=g, dtype=torch.float64) for h in self.directions}
        return replace(self, directions=directions, provenance={**self.provenance, "control": "random", "seed": seed})

    def interventions(self) -> dict[str, Intervention]:
        """Hook point -> edit, for `forward`/`generate(interventions=...)` or a backend's `ForwardCall`."""
        return {h: steer(u, self.scales[h], self.mode, self.positions) for h, u in self.directions.items()}

    @contextmanager
    def apply(self, model: ModelHandle | nn.Module, *, allow_other_model: bool = False) -> Iterator[None]:
        """Steer every forward of ``model`` inside the block: a ModelHandle (any backend, with tripwire's
        decode loop) or a plain Hugging Face model (torch hooks, so its own ``generate`` is steered)."""
        if isinstance(model, ModelHandle):
            self.check_model(model.d_model, model.fingerprint, model.name, allow_other_model)
            with model.intervening(self.interventions()):
                yield
        elif isinstance(model, nn.Module):
            config: Any = model.config
            self.check_model(int(config.hidden_size), None, None, allow_other_model)
            with hf_interventions(model, self.interventions()):
                yield
        else:
            raise TypeError(f"apply() takes a ModelHandle or a Hugging Face model, got {type(model).__name__}.")

    def check_model(self, d_model: int, fingerprint: str | None, name: str | None, allow_other: bool = False) -> None:
        """Refuse a model of another width, or (unless ``allow_other``) another fingerprint than the one
        the vector was made for; `apply` calls it, a run can call it from the model's config alone."""
        if d_model != self.d_model:
            raise ProbeModelMismatchError(f"this steering vector is {self.d_model} wide but the model's residual "
                                          f"stream is {d_model}; build it from a probe of this model.")
        made_for = self.provenance.get("model_fingerprint")
        if made_for and fingerprint and made_for != fingerprint and not allow_other:
            raise ProbeModelMismatchError(
                f"this steering vector was made for {self.provenance.get('model_name')!r} (fingerprint {made_for}), "
                f"not {name!r} (fingerprint {fingerprint}); pass allow_other_model=True to apply it anyway.")

    def to_json(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "mode": self.mode, "d_model": self.d_model,
                "positions": _positions_json(self.positions),
                "scales": self.scales, "arrays_sha256": {h: _sha256(v) for h, v in self.directions.items()},
                "provenance": self.provenance}

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        directory = Path(directory)
        if not overwrite and ((directory / CARD_FILE).exists() or (directory / ARRAYS_FILE).exists()):
            raise FileExistsError(f"{directory} already holds a steering vector; pass overwrite=True.")
        data = {**self.to_json(), "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "tripwire_version": __version__}
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        directory.mkdir(parents=True, exist_ok=True)
        save_file({h: v.contiguous() for h, v in self.directions.items()}, directory / ARRAYS_FILE)
        (directory / CARD_FILE).write_text(text)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> SteeringVector:
        """Read a saved vector; a missing, malformed or modified file is a `SteeringFileError`."""
        directory = Path(directory)
        card, arrays = directory / CARD_FILE, directory / ARRAYS_FILE
        try:
            data = json.loads(card.read_text(encoding="utf-8"))
            tensors = load_file(arrays)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError) as error:
            raise SteeringFileError(f"{directory} is not a readable steering vector ({error}); it needs "
                                    f"{CARD_FILE} and {ARRAYS_FILE} as written by SteeringVector.save.") from None
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise SteeringFileError(f"{card}: not a format-{FORMAT_VERSION} steering card; re-save it.")
        expected = data.get("arrays_sha256") or {}
        if set(tensors) != set(expected) or set(expected) != set(data.get("scales") or {}):
            raise SteeringFileError(f"{directory}: the arrays {sorted(tensors)} do not match the card's hook points "
                                    f"{sorted(expected)}; re-save the vector.")
        if changed := sorted(h for h, t in tensors.items() if _sha256(t) != expected[h]):
            raise SteeringFileError(f"{arrays}: {changed} do not match the sha256 in {CARD_FILE}; the file was "
                                    "modified or damaged. Restore it or rebuild the vector.")
        p = data.get("positions")
        try:
            return cls(tensors, data["scales"], data["mode"], None if p is None else slice(p["start"], p["stop"]),
                       data.get("provenance") or {})
        except (KeyError, TypeError, ValueError) as error:
            raise SteeringFileError(f"{card} is not a valid steering card: {error}.") from None

"""Save and load fitted probes as ``probe.safetensors`` (arrays) + ``probe.json`` (a ``ProbeCard``).

Never pickle: a probe file is data a colleague can inspect, diff and load without executing code. The
card records which model and hook point the probe reads (loading refuses a model whose residual stream
it was not trained on) and the sha256 of every array, so a flipped byte is refused, not scored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from jaxtyping import Float
from numpy.typing import ArrayLike
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from sklearn.utils.validation import check_is_fitted

from tripwire import __version__
from tripwire.activations.positions import PositionPolicy
from tripwire.errors import TripwireError
from tripwire.probes.card import ARRAY_NAMES, CARD_VERSION, ProbeCard, ProbeFileError, card_from_json
from tripwire.probes.estimators import PROBE_METHODS, LinearProbe
from tripwire.probes.estimators._base import as_numpy
from tripwire.scenarios.datasets.jsonl import json_problem

__all__ = ["CARD_VERSION", "SHIPPED_PROBES", "LoadedProbe", "ProbeCard", "ProbeFileError", "ProbeModelMismatchError",
           "load_probe", "probe_path", "save_probe", "shipped_probe_names"]

ARRAYS_FILE = "probe.safetensors"
CARD_FILE = "probe.json"
SHIPPED_PROBES = Path(__file__).resolve().parent / "shipped"  # package data: <model>/<label>/probe.{json,safetensors}


class ProbeModelMismatchError(TripwireError, ValueError):
    """The probe was trained on a different model's residual stream."""


class ModelLike(Protocol):
    """What ``load_probe`` needs to know about the model a probe will read (e.g. a ModelHandle)."""

    @property
    def name(self) -> str: ...
    @property
    def d_model(self) -> int: ...
    @property
    def fingerprint(self) -> str | None: ...


@dataclass(frozen=True)
class LoadedProbe:
    """A restored estimator plus its card: scores raw activations and knows its steering scale."""

    estimator: LinearProbe
    card: ProbeCard

    @property
    def direction_(self) -> Float[np.ndarray, " d_model"]:
        return self.estimator.direction_

    @property
    def resid_norm(self) -> float | None:
        return self.card.resid_norm

    def decision_function(self, X: ArrayLike | torch.Tensor) -> Float[np.ndarray, " n"]:
        return self.estimator.decision_function(X)

    def predict_proba(self, X: ArrayLike | torch.Tensor) -> Float[np.ndarray, "n 2"]:
        return self.estimator.predict_proba(X)

    @property
    def score_positions(self) -> PositionPolicy:
        return self.card.score_positions


def git_commit() -> str | None:
    """The checkout's commit (with `+dirty` when it has changes), or None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def hash_training_data(X: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor) -> str:
    """sha256 of rows and labels (shape, dtype, bytes): ``ProbeCard.training_data_hash``."""
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(as_numpy(X)), np.ascontiguousarray(as_numpy(y))):
        digest.update(f"{array.shape}|{array.dtype.str}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _json_params(probe: LinearProbe) -> dict[str, Any]:
    return {
        name: str(value).removeprefix("torch.") if isinstance(value, torch.dtype) else value
        for name, value in probe.get_params().items()
    }


def _arrays(probe: LinearProbe) -> dict[str, np.ndarray]:
    arrays = {"direction": probe.direction_, "mean": probe.mean_, "scale": probe.scale_,
              "coef": probe.coef_[0], "bias": probe.intercept_}
    return {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float64).tobytes()).hexdigest()


def save_probe(
    probe: LinearProbe, directory: str | Path, card: ProbeCard, *, overwrite: bool = False
) -> Path:
    """Write ``probe.safetensors`` and ``probe.json`` into ``directory`` (created if missing)."""
    check_is_fitted(probe, "coef_")
    method, d_model = type(probe).method_name, int(probe.n_features_in_)
    if card.estimator not in (None, method):
        raise ValueError(f"card.estimator={card.estimator!r} but the probe is a {method!r} probe; leave it None.")
    if card.d_model not in (None, d_model):
        raise ValueError(f"card.d_model={card.d_model} but the probe reads {d_model} dims; leave it None.")
    arrays = _arrays(probe)
    if bad := [k for k, v in arrays.items() if not np.all(np.isfinite(v))]:
        raise ValueError(f"the probe's {bad} contain NaN or inf; refit it before saving.")
    directory = Path(directory)
    if not overwrite and ((directory / CARD_FILE).exists() or (directory / ARRAYS_FILE).exists()):
        raise FileExistsError(
            f"{directory} already holds a probe; pass overwrite=True or pick a new directory."
        )
    full_card = dataclasses.replace(
        card,
        estimator=method,
        d_model=d_model,
        params=_json_params(probe),
        classes=probe.classes_.tolist(),
        arrays_sha256={k: _sha256(v) for k, v in arrays.items()},
        created_at=card.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tripwire_version=card.tripwire_version or __version__,
        git_commit=card.git_commit or git_commit(),
    )
    text = full_card.dumps()
    try:  # refuse now what load_probe would refuse later, so no unloadable card is ever written
        card_from_json(json.loads(text), directory / CARD_FILE)
    except ProbeFileError as error:
        raise ProbeFileError(f"not saved: {error}") from None
    directory.mkdir(parents=True, exist_ok=True)
    save_file(arrays, directory / ARRAYS_FILE)
    (directory / CARD_FILE).write_text(text)
    return directory


def shipped_probe_names() -> list[str]:
    """Names of the probes installed with the package, e.g. ``default/coercion``."""
    return sorted(p.parent.relative_to(SHIPPED_PROBES).as_posix() for p in SHIPPED_PROBES.glob(f"*/*/{CARD_FILE}"))


def probe_path(location: str | Path) -> Path:
    """A probe folder, or the name of a shipped probe (``default/coercion``) from any working directory.

    A folder that holds a card wins over a shipped name, so a user's own ``default/coercion`` is read."""
    path = Path(location)
    if (path / CARD_FILE).is_file() or path.is_absolute():
        return path
    shipped = SHIPPED_PROBES / path
    return shipped if (shipped / CARD_FILE).is_file() else path


def load_probe(
    directory: str | Path, model: ModelLike | None = None, *, allow_other_model: bool = False
) -> LoadedProbe:
    """Restore a probe saved by ``save_probe``, from its folder or a shipped name (``default/coercion``);
    with ``model``, refuse one it was not trained on.

    A different width is always refused. A different fingerprint (or, when either fingerprint is
    unknown, a different name) is refused unless ``allow_other_model=True``.
    """
    directory = probe_path(directory)
    card = _read_card(directory / CARD_FILE)
    arrays = _read_arrays(directory / ARRAYS_FILE, card)
    if model is not None:
        check_model_matches(card, model, allow_other_model=allow_other_model, card_file=directory / CARD_FILE)
    assert card.estimator is not None
    estimator = PROBE_METHODS[card.estimator](**card.params)
    estimator.classes_ = np.asarray(card.classes)
    estimator.n_features_in_ = card.d_model
    estimator.mean_, estimator.scale_ = arrays["mean"], arrays["scale"]
    estimator._set_linear(arrays["coef"], float(arrays["bias"][0]), arrays["direction"])
    return LoadedProbe(estimator=estimator, card=card)


def context_length(model: object) -> int | None:
    """The model's context in tokens where its config says so cheaply (a loaded handle), else None."""
    config = getattr(getattr(model, "model", None), "config", None)
    length = getattr(config, "max_position_embeddings", None)
    return length if isinstance(length, int) and not isinstance(length, bool) and length > 0 else None


def check_model_matches(card: ProbeCard, model: ModelLike, *, allow_other_model: bool = False,
                        card_file: Path | None = None) -> None:
    """Refuse a model the probe was not trained on, or whose context is shorter than the card's window."""
    trained = f"{card.model_name!r} (fingerprint {card.model_fingerprint}, d_model {card.d_model})"
    given = f"{model.name!r} (fingerprint {model.fingerprint}, d_model {model.d_model})"
    if model.d_model != card.d_model:
        raise ProbeModelMismatchError(
            f"Probe {card.label!r} was trained on {trained} but the model is {given}: the residual widths "
            "differ, so it cannot read this model. Train a probe on this model's activations."
        )
    if card.model_fingerprint and model.fingerprint:
        same = card.model_fingerprint == model.fingerprint
    else:
        same = card.model_name == model.name
    if not same and not allow_other_model:
        raise ProbeModelMismatchError(
            f"Probe {card.label!r} was trained on {trained} but the model is {given}. Load with "
            "allow_other_model=True to apply it anyway (e.g. to a fine-tune of the same base), or "
            "train a probe on this model."
        )
    if (limit := context_length(model)) is not None and card.window > limit:
        where = card_file or f"the card of probe {card.label!r}"
        raise ProbeFileError(f"{where}: card field window is {card.window} tokens but {model.name!r} reads at most "
                             f"{limit}, so a running mean that long never fills as it was calibrated. Re-calibrate "
                             "the probe with a window that fits this model's context.")


def _read_card(path: Path) -> ProbeCard:
    if not path.is_file():
        raise ProbeFileError(
            f"{path} is missing; a probe directory needs {CARD_FILE} and {ARRAYS_FILE} "
            f"as written by save_probe (shipped probes by name: {', '.join(shipped_probe_names())})."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ProbeFileError(f"{path} is not UTF-8 text ({error}); re-save the probe with save_probe.") from None
    except (ValueError, RecursionError) as error:  # bad JSON, a 5,000-digit integer, deep nesting
        raise ProbeFileError(
            f"{path} is not valid JSON ({json_problem(error)}); re-save the probe with save_probe."
        ) from None
    return card_from_json(data, path)


def _read_arrays(path: Path, card: ProbeCard) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ProbeFileError(
            f"{path} is missing; a probe directory needs {CARD_FILE} and {ARRAYS_FILE} "
            f"as written by save_probe (shipped probes by name: {', '.join(shipped_probe_names())})."
        )
    try:
        arrays = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise ProbeFileError(
            f"{path} is not a readable safetensors file ({error}); re-save the probe."
        ) from error
    expected = {name: (card.d_model,) for name in ARRAY_NAMES} | {"bias": (1,)}
    wrong = [
        f"{name}: {arrays[name].shape if name in arrays else 'missing'} (expected {shape})"
        for name, shape in expected.items()
        if name not in arrays or arrays[name].shape != shape
    ]
    if wrong:
        raise ProbeFileError(
            f"{path} does not match its card (d_model={card.d_model}): {', '.join(wrong)}. "
            "Re-save the probe with save_probe."
        )
    if bad := [k for k, v in arrays.items() if not np.all(np.isfinite(v))]:
        raise ProbeFileError(f"{path}: {bad} contain NaN or inf; the file is damaged. Re-save or re-train.")
    if not card.arrays_sha256:  # card_from_json allows this for a migrated format-1 card only
        if card.migrated_from != 1:
            raise ProbeFileError(f"{path.with_name(CARD_FILE)}: card field arrays_sha256 is missing; only a "
                                 "migrated format-1 card may lack it. Restore the card or re-train the probe.")
        return arrays
    changed = [k for k in ARRAY_NAMES if card.arrays_sha256.get(k) != _sha256(arrays[k])]
    if changed:
        raise ProbeFileError(f"{path}: {changed} do not match the sha256 in {CARD_FILE}; the file was "
                             "modified or damaged. Restore it from where you got the probe, or re-train.")
    return arrays

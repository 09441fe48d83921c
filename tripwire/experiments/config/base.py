"""What every tripwire config shares: strict models (an unknown key is an error that names the key and the
nearest known one), `ConfigError`, one way to word validation problems, and reading a YAML file with
every way it can be unreadable named with the file and the fix."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from tripwire.errors import TripwireError

T = TypeVar("T")

STAGE_REF = "stage:"  # an earlier stage of the same config, by name: stage:<its name>
UNKNOWN_KEY = "unknown_key"  # the error type `refuse_unknown_keys` raises; `problem_lines` words it


class ConfigError(TripwireError, ValueError):
    """A config file that cannot be read or validated; the message names the file and field path."""


def did_you_mean(word: str, known: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the nearest of `known`, else the known words, for an error message."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"


class KnownKeys(BaseModel):
    """A model that refuses unknown keys (a typo is an error, not a silent default). Each unknown key's value
    is wrapped in `UnknownKey`, carrying the nearest known key, so the error pydantic reports for it (next to
    every other problem of the input) can be worded by `problem_lines` with a did-you-mean."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        return mark_unknown_keys(cls, data)


@dataclass(frozen=True)
class UnknownKey:
    """The value of a key its model does not have, and what to say about the key (`did_you_mean`)."""

    value: Any
    hint: str

    def __repr__(self) -> str:
        return repr(self.value)


def _unknown(model: type[BaseModel], data: dict[Any, Any]) -> dict[str, str]:
    known = list(model.model_fields)
    return {str(k): did_you_mean(str(k), known) for k in data if k not in model.model_fields}


def mark_unknown_keys(model: type[BaseModel], data: Any) -> Any:
    """`data` with each key `model` lacks holding an `UnknownKey` (a new dict; the caller's is not changed)."""
    if not isinstance(data, dict) or not (hints := _unknown(model, data)):
        return data
    return {k: UnknownKey(v, hints[str(k)]) if str(k) in hints else v for k, v in data.items()}


def refuse_unknown_keys(model: type[BaseModel], data: Any) -> Any:
    """`data` as it is when it is not a mapping or has only `model`'s field names; else one error naming the
    unknown keys, for a place where anything pydantic would add after them is noise (a stage's `pipeline`)."""
    if not isinstance(data, dict) or not (hints := _unknown(model, data)):
        return data
    message = f"unknown key{'s' if len(hints) > 1 else ''} " + ", ".join(f"{k!r}{h}" for k, h in hints.items())
    raise PydanticCustomError(UNKNOWN_KEY, message, {"unknown_hints": hints})


def problem_lines(exc: ValidationError, where: Callable[[tuple[Any, ...]], str]) -> list[str]:
    """One line per problem, ``<field path>: <problem>``, in the project's words: an unknown key is named
    in its path with a did-you-mean, and pydantic's "Value error, " prefix is dropped."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == UNKNOWN_KEY:
            lines += [f"{where((*loc, key))}: unknown key{hint}" for key, hint in err["ctx"]["unknown_hints"].items()]
            continue
        if err["type"] == "extra_forbidden":
            hint = err["input"].hint if isinstance(err["input"], UnknownKey) else ""
            lines.append(f"{where(loc)}: unknown key{hint}")
            continue
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{place}: {message}" if (place := where(loc)) else message)
    return lines


class Strict(KnownKeys):
    """A frozen config model that refuses unknown keys (a typo is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml(path: str | Path, missing: str) -> Any:
    """The parsed YAML at `path`; `missing` is the message when it is not a file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(missing)
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); pass a YAML "
                          "config saved as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None


def control_needed(fpr: float) -> int:
    """Fewest control transcripts that can hold a cut at `fpr` when half fits it: that half needs >= 1/fpr."""
    return 2 * math.ceil(1 / fpr - 1e-9) - 1


def check_control(control_limit: int | None, fpr: float) -> None:
    """The cut is fitted on half of the control set, and that half must hold at least 1/fpr transcripts."""
    need = control_needed(fpr)
    if control_limit is not None and control_limit < need:
        raise ValueError(f"control_limit {control_limit} cannot resolve fpr {fpr:g}: the threshold is fitted on half "
                         f"of the control transcripts and needs >= {need} of them; raise control_limit to {need} or "
                         "more, or raise fpr")


def check_probe_ref(ref: str) -> str:
    if ref.startswith(STAGE_REF) and not ref.removeprefix(STAGE_REF):
        raise ValueError(f"{ref!r} names no stage; write stage:<name of an earlier probe stage>")
    return ref


def check_distinct(values: list[T], problem: str) -> list[T]:
    """A list that names each thing once; `problem` says what repeated (the caller words it)."""
    if len(set(values)) != len(values):
        raise ValueError(problem)
    return values


def check_alphas(alphas: list[float]) -> list[float]:
    """Steering strengths: finite numbers only."""
    if not all(math.isfinite(a) for a in alphas):
        raise ValueError(f"strengths must be finite numbers (got {alphas})")
    return alphas

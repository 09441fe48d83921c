"""What every tripwire config shares: strict models (an unknown key is an error), `ConfigError`, and
reading a YAML file with every way it can be unreadable named with the file and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from tripwire.errors import TripwireError


class ConfigError(TripwireError, ValueError):
    """A config file that cannot be read or validated; the message names the file and field path."""


class Strict(BaseModel):
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

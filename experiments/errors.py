"""One place that turns a user's mistake into one clear line and exit code 2, never a traceback.

Only the project's own error types are caught: each is raised with a message that names the input and
the fix. Anything else (a KeyError, a RuntimeError from a library) is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import typer


class UsageError(ValueError):
    """A command was given inputs that cannot work together, or a file it cannot read."""


@functools.cache
def user_errors() -> tuple[type[BaseException], ...]:
    """Imported on first use, so a pure-data command does not pay for torch just to handle errors."""
    from pydantic import ValidationError

    from activations import (
        BackendCompatibilityError,
        DefaultModelMissingError,
        HookPointError,
        ModelLoadError,
        PositionPolicyError,
        RunnerError,
        UnknownBackendError,
    )
    from activations.chat import ChatTemplateError
    from activations.store_types import StoreError
    from experiments.configs import ConfigError
    from probes import ProbeFileError, ProbeModelMismatchError
    from probes.datasets import ProbeDataError
    from probes.estimators import NotBinaryError, PairingError
    from probes.honesty import HonestyInputError
    from probes.metrics import MetricInputError
    from probes.scoring import ScoringError
    from probes.splits import SplitError, TooFewGroupsError
    from probes.sweep import SweepInputError
    from probes.thresholds import CalibrationError
    from scenarios.am_interop import AMFormatError
    from scenarios.datasets import UnknownDatasetError
    from scenarios.datasets.jsonl import TranscriptFormatError
    from scenarios.grid import SpecError, UnknownConditionError

    return (
        UsageError, ValidationError,
        BackendCompatibilityError, DefaultModelMissingError, HookPointError, ModelLoadError, PositionPolicyError,
        RunnerError, StoreError, UnknownBackendError, ConfigError, ChatTemplateError,
        ProbeFileError, ProbeModelMismatchError, ProbeDataError, NotBinaryError, PairingError, HonestyInputError,
        MetricInputError, ScoringError, SplitError, TooFewGroupsError, SweepInputError, CalibrationError,
        AMFormatError, UnknownDatasetError, TranscriptFormatError, SpecError, UnknownConditionError,
    )


class _Fail:
    @contextmanager
    def on_user_error(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            if not isinstance(exc, user_errors()):
                raise
            typer.echo(f"error: {str(exc).strip() or type(exc).__name__}", err=True)
            raise typer.Exit(2) from None


fail = _Fail()

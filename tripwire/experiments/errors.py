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

    from tripwire.activations import (
        BackendCompatibilityError,
        DefaultModelMissingError,
        HookPointError,
        ModelLoadError,
        PositionPolicyError,
        RunnerError,
        UnknownBackendError,
    )
    from tripwire.activations.chat import ChatTemplateError
    from tripwire.activations.remote import RemoteUnsupportedError
    from tripwire.activations.store_types import StoreError
    from tripwire.experiments.configs import ConfigError
    from tripwire.probes import ProbeFileError, ProbeModelMismatchError
    from tripwire.probes.datasets import ProbeDataError
    from tripwire.probes.estimators import NotBinaryError, PairingError
    from tripwire.probes.honesty import HonestyInputError
    from tripwire.probes.metrics import MetricInputError
    from tripwire.probes.scoring import ScoringError
    from tripwire.probes.splits import SplitError, TooFewGroupsError
    from tripwire.probes.steering_vector import SteeringFileError
    from tripwire.probes.sweep import SweepInputError
    from tripwire.probes.thresholds import CalibrationError
    from tripwire.scenarios.am_interop import AMFormatError
    from tripwire.scenarios.datasets import UnknownDatasetError
    from tripwire.scenarios.datasets.jsonl import TranscriptFormatError
    from tripwire.scenarios.datasets.splits import FoldError
    from tripwire.scenarios.grid import SpecError, UnknownConditionError
    from tripwire.scenarios.inspect_logs import InspectLogError

    return (
        UsageError, ValidationError,
        BackendCompatibilityError, DefaultModelMissingError, HookPointError, ModelLoadError, PositionPolicyError,
        RunnerError, StoreError, UnknownBackendError, ConfigError, ChatTemplateError,
        ProbeFileError, ProbeModelMismatchError, ProbeDataError, NotBinaryError, PairingError, HonestyInputError,
        MetricInputError, ScoringError, SplitError, TooFewGroupsError, SweepInputError, CalibrationError,
        AMFormatError, UnknownDatasetError, TranscriptFormatError, SpecError, UnknownConditionError,
        SteeringFileError, RemoteUnsupportedError, FoldError, InspectLogError,
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

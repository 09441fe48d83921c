"""Registers the "tripwire" model API with Inspect; the package's `inspect_ai` entry point names this
module. It imports only inspect_ai: Inspect loads every entry point whenever it resolves a model, so the
provider (torch, the model) is imported only when a `tripwire/...` model is asked for."""

from __future__ import annotations

from inspect_ai.model import ModelAPI, modelapi


@modelapi(name="tripwire")
def tripwire() -> type[ModelAPI]:
    # reason: Inspect imports every entry point whenever it resolves a model; torch loads only on use
    from tripwire.experiments.inspect_provider import TripwireModelAPI

    return TripwireModelAPI

"""Contrast datasets for probe training and calibration: `coercion`, `eval_awareness`, `control`.

All text is generated from our own templates with a seeded `random.Random`, so `dataset(name, seed)`
returns the same transcripts every time; `family` is the template family for grouped splits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tripwire.scenarios.datasets import coercion, control, eval_awareness
from tripwire.scenarios.datasets.jsonl import (
    TranscriptFormatError,
    load_jsonl,
    transcript_from_dict,
    transcript_to_dict,
    write_jsonl,
)
from tripwire.scenarios.spec import Transcript

DATASETS: dict[str, Callable[[int], list[Transcript]]] = {
    "coercion": coercion.build,
    "eval_awareness": eval_awareness.build,
    "control": control.build,
}


class UnknownDatasetError(ValueError):
    """A dataset name that is not in `DATASETS`."""


def dataset(name: str, seed: int = 0) -> list[Transcript]:
    """The transcripts of one contrast dataset, deterministic in `seed`."""
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; use one of {sorted(DATASETS)}")
    return DATASETS[name](seed)


def export_jsonl(name: str, path: str | Path, seed: int = 0) -> Path:
    """Write `dataset(name, seed)` as JSON Lines (one transcript per line); returns the path."""
    return write_jsonl(dataset(name, seed), path)


__all__ = [
    "TranscriptFormatError",
    "DATASETS",
    "UnknownDatasetError",
    "dataset",
    "export_jsonl",
    "load_jsonl",
    "transcript_from_dict",
    "transcript_to_dict",
]

"""Contrast datasets for probe training, evaluation and calibration.

- `coercion`: scripted replies, coercive vs honest, every window anchored on the reply's tool call.
- `coercion_pairs`: one reply under two operator instructions (identical reply tokens within a pair).
- `eval_awareness`: one task under test vs real cues (scripted, cue families partitionable).
- `eval_pairs`: one task and one reply under a test vs a deployment note (identical reply tokens).
- `coercion_traps`: evaluation only (negations, refusals that name the act, euphemisms, quoted threats).
- `benign_scenario`: routine replies to the scenario prompts, label 0, for thresholds on agentic text.
- `control`: unlabelled everyday text for false-positive calibration.

All text is generated from our own templates with a seeded `random.Random`, so `dataset(name, seed)`
returns the same transcripts every time. `meta["parts"]` names the shared wording parts that
`splits.folds` holds out; `splits.label_words` computes label words from a training side only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tripwire.errors import TripwireError
from tripwire.scenarios.datasets import (
    benign_scenario,
    coercion,
    coercion_pairs,
    coercion_traps,
    control,
    eval_awareness,
    eval_pairs,
)
from tripwire.scenarios.datasets.jsonl import (
    TranscriptFormatError,
    load_jsonl,
    transcript_from_dict,
    transcript_to_dict,
    write_jsonl,
)
from tripwire.scenarios.datasets.splits import (
    Fold,
    FoldError,
    fold_leaks,
    folds,
    label_bearing_texts,
    label_words,
    shared_ngrams,
)
from tripwire.scenarios.spec import Transcript

DATASETS: dict[str, Callable[[int], list[Transcript]]] = {
    "coercion": coercion.build,
    "coercion_pairs": coercion_pairs.build,
    "coercion_traps": coercion_traps.build,
    "benign_scenario": benign_scenario.build,
    "eval_awareness": eval_awareness.build,
    "eval_pairs": eval_pairs.build,
    "control": control.build,
}


class UnknownDatasetError(TripwireError, ValueError):
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
    "Fold",
    "FoldError",
    "fold_leaks",
    "folds",
    "label_bearing_texts",
    "label_words",
    "shared_ngrams",
    "TranscriptFormatError",
    "DATASETS",
    "UnknownDatasetError",
    "dataset",
    "export_jsonl",
    "load_jsonl",
    "transcript_from_dict",
    "transcript_to_dict",
]

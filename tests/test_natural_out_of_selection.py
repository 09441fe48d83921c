"""Issue 20 item 6: the natural eval-awareness prompts choose nothing. No job selects on them, and without
a development set a design wins on its own validation fold, whatever a dev figure would have said."""

from __future__ import annotations

from typing import Any

from tripwire.experiments.ship_probes import JOBS, _choice_key

NATURAL = {"eval_natural", "eval_natural_test"}


def _entry(val_auroc: float, dev_auroc: float | None) -> dict[str, Any]:
    row = {"layer": 5, "method": "lr", "val_auroc": val_auroc, "val_logloss": 0.6}
    return {"selection": {"selected": {"layer": 5, "method": "lr"}, "rows": [row]},
            "dev": None if dev_auroc is None else {"window": {"value": dev_auroc, "logloss": 0.6}}}


def test_no_job_selects_on_the_natural_prompts_and_both_splits_are_reported() -> None:
    assert all(job["dev"] not in NATURAL for job in JOBS.values())
    assert set(JOBS["eval_awareness"]["held_out"].values()) == NATURAL


def test_without_a_development_set_the_validation_fold_chooses() -> None:
    designs = {"a": _entry(0.80, 0.55), "b": _entry(0.70, 0.90)}
    assert max(designs, key=lambda n: _choice_key(designs[n], by_dev=False)) == "a"
    assert max(designs, key=lambda n: _choice_key(designs[n], by_dev=True)) == "b"  # what a peek at dev would pick

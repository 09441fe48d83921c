"""results.md and the README table for reports with nested per-fold selection: each fold names the cell
it selected, the main split's validation fold shows as excluded (never as a test side, never counted
among the folds that beat the text), each split rule has a pooled row with its interval over groups,
(iii) names its layer, and the selection table carries the best null cell beside the selected score."""

from __future__ import annotations

from typing import Any

from tripwire.experiments.ship_results import readme_summary, results_markdown


def _metric(value: float, low: float | None = None, over: str = "pairs", n: int = 24) -> dict[str, Any]:
    return {"value": value, "low": low, "high": None if low is None else value + 0.05, "over": over, "n_units": n,
            "n_boot": 100, "note": None if low is not None else f"{n} {over} < 10"}


def _fold(name: str, control: str, verdict: str) -> dict[str, Any]:
    monitor = {"name": "word 1-2", "C": 1.0}
    return {"fold": name, "n_train": 100, "n_test": 48, "n_test_positive": 24, "probe": _metric(0.8, 0.75),
            "baselines": {"i_span_bag_of_words": {**_metric(0.5, 0.45), "monitor": monitor},
                          "ii_streaming_text_monitor": {**_metric(0.6, 0.55), "monitor": monitor},
                          control: {**_metric(0.7, 0.65), "layer": 1 if control != "iii_layer0_probe" else 0},
                          "iv_permutation_null": {"mean": 0.5, "p95": 0.6, "p_value": 0.01, "n_perm": 200},
                          "iv_random_directions": {"mean": 0.5, "p95": 0.6, "n": 5, "norm_matched": True}},
            "verdict": verdict, "selected": {"layer": 5, "method": "lr", "val_auroc": 0.9, "inner": {"by": "cue"}}}


def _report() -> dict[str, Any]:
    pairs_folds = [{"fold": "cue=g1", "excluded": "the main split's validation fold (cue=g1)"},
                   _fold("cue=g0", "iii_layer1_2_probe", "beats the text"),
                   _fold("cue=g2", "iii_layer1_2_probe", "does not beat the text")]
    pooled = {"folds": ["cue=g0", "cue=g2"], "n_test": 96, "n_test_positive": 48, "over": "cue strings",
              "n_groups": 10, "probe": _metric(0.77, 0.7, "cue strings", 10),
              "baselines": {"i_span_bag_of_words": _metric(0.5, 0.4, "cue strings", 10),
                            "ii_streaming_text_monitor": _metric(0.6, 0.5, "cue strings", 10),
                            "iii_layer1_2_probe": _metric(0.65, 0.55, "cue strings", 10)},
              "verdict": "beats the text"}
    selection = {"statistic": "streaming", "rows": [{"layer": 5, "method": "lr", "val_auroc": 0.9, "val_logloss": 0.3}],
                 "selected": {"layer": 5, "method": "lr"},
                 "null_best_cell": {"mean": 0.66, "p95": 0.74, "p_value": 0.02, "n_perm": 50, "cells": 40}}
    design = {"sources": ["eval_pairs"], "selection": selection, "dev": None,
              "test": {"main test: eval_pairs": _fold("cue=g0", "iii_layer1_2_probe", "beats the text")},
              "folds": {"eval_pairs": {"cue": pairs_folds, "family": {"skipped": "no such part"}}},
              "pooled_folds": {"eval_pairs": {"cue": pooled}}}
    return {"model": "tiny", "run": {"window": 8, "null_perms": 50},
            "probes": {"eval_awareness": {"designs": {"pairs": design}, "chosen_design": "pairs",
                                          "shipped": {"layer": 5, "method": "lr"}}}}


def test_results_md_shows_nested_cells_excluded_validation_pooled_groups_and_the_null_cell() -> None:
    md = results_markdown(_report())
    rows = md.splitlines()
    assert any("| cue=g1 | excluded: the main split's validation fold" in r for r in rows)
    assert sum("| 5 / lr |" in r for r in rows) >= 3  # the main test and both evaluated folds name their cell
    pooled = next(r for r in rows if "pooled out-of-fold" in r)
    assert "intervals over 10 cue strings" in pooled and "0.770 [0.700, 0.820] /10 cue strings" in pooled
    assert "0.700 [0.650, 0.750] /24 pairs (layer 1)" in md  # (iii) names the early layer it used
    assert "0.660 / 0.740, p = 0.020 (50 perms x 40 cells)" in md
    assert "blocks 1 and 2" in md and "nested" in md
    header = next(r for r in rows if r.startswith("| design or rule"))
    assert all(r.count("|") == header.count("|") for r in rows if r.startswith("| pairs /"))


def test_the_readme_counts_only_evaluated_folds_and_names_the_early_layer() -> None:
    table = readme_summary(_report())
    assert "(iii) early layer" in table and "1 of 2" in table  # the excluded validation fold is not counted
    assert "(layer 1)" in table

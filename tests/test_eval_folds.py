"""A fold evaluated with its baselines and the verdict rule, on synthetic per-transcript data: a probe
that reads a state the words do not show beats the text; one that reads a word does not; on
identical-token pairs an early layer that already reads the label stops a "beats the text" that the
empty layer-0 control would have let through."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from tripwire.probes.estimators import DiffMeanProbe, LogisticProbe
from tripwire.probes.fold_eval import (
    FoldData,
    FoldInputError,
    FoldSettings,
    evaluate_fold,
    select_cell,
    verdict,
)
from tripwire.probes.metrics import UnitMetric

WORDS = "the board met today and reviewed budget plans while staff wrote memos about schedules".split()
N, TOK, D = 80, 12, 16


def _world(signal_in: str, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], FoldData]:
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], N // 2)
    texts, cuts, rows, rows0 = [], [], [], []
    for label in y:
        words = rng.choice(WORDS, size=TOK).tolist()
        if signal_in == "words" and label:
            words[3] = "leverage"
        text = "Prompt text here. " + " ".join(words)
        texts.append(text)
        cuts.append(np.array([m.end() for m in re.finditer(r"\w+", text)][-TOK:]))
        r = rng.normal(size=(TOK, D))
        if signal_in == "state":
            r[:, 0] += 1.5 * label  # the model's state differs; the words do not
        else:
            r[3:, 0] += 3.0 * (words[3] == "leverage")  # the activation only echoes the word
        rows.append(r)
        rows0.append(rng.normal(size=(TOK, D)))
    spans = [t.split(". ", 1)[1] for t in texts]
    data = FoldData(labels=y, units=np.arange(N) // 2, unit_name="pairs", pair_ids=None, texts=texts,
                    cuts=cuts, spans=spans)
    return rows, rows0, data


TRAIN, TEST = np.arange(0, 48), np.arange(48, N)
SETTINGS = FoldSettings(window=4, n_boot=200, n_random=20)


def test_a_probe_reading_the_state_beats_the_text() -> None:
    rows, rows0, data = _world("state")
    out = evaluate_fold("f", DiffMeanProbe(), rows, {0: rows0}, data, TRAIN, TEST, SETTINGS)
    b = out["baselines"]
    assert out["probe"]["value"] > 0.9 and out["probe"]["over"] == "pairs" and out["probe"]["n_units"] == 16
    assert b["ii_streaming_text_monitor"]["value"] < 0.8 and b["iii_layer0_probe"]["value"] < 0.8
    assert out["verdict"] == "beats the text"
    assert 0.3 < b["iv_random_directions"]["mean"] < 0.7
    null = b["iv_permutation_null"]  # the probe method refit on 200 balanced permutations of the labels
    assert null["n_perm"] == 200 and null["balance"]["ok"] and null["p_value"] < 0.05 < null["p95"]
    assert out["strongest_text_monitor"]["value"] == max(b["i_span_bag_of_words"]["value"],
                                                         b["ii_streaming_text_monitor"]["value"])
    assert b["ii_streaming_text_monitor"]["monitor"]["name"].startswith(("word", "char"))
    json.dumps(out, allow_nan=False)


def test_a_probe_echoing_a_word_does_not_beat_the_text() -> None:
    rows, rows0, data = _world("words")
    out = evaluate_fold("f", DiffMeanProbe(), rows, {0: rows0}, data, TRAIN, TEST, SETTINGS)
    assert out["baselines"]["ii_streaming_text_monitor"]["value"] > 0.95
    assert out["baselines"]["i_span_bag_of_words"]["value"] > 0.95
    assert out["verdict"] == "does not beat the text"


def test_verdict_needs_an_interval_and_both_baselines() -> None:
    none = UnitMetric(0.99, None, None, "families", 2, 0, "2 families < 10")
    hi = UnitMetric(0.99, 0.97, 1.0, "pairs", 20, 100)
    lo = UnitMetric(0.6, 0.5, 0.7, "pairs", 20, 100)
    assert verdict(none, lo, lo).startswith("undetermined: no interval")
    assert verdict(hi, lo, None).startswith("undetermined: baseline")
    assert verdict(hi, lo, lo) == "beats the text"
    assert verdict(lo, lo, lo) == "does not beat the text"


def test_a_fold_with_one_class_on_a_side_is_refused() -> None:
    rows, rows0, data = _world("state")
    with pytest.raises(FoldInputError, match="test side of fold f"):
        evaluate_fold("f", DiffMeanProbe(), rows, {0: rows0}, data, TRAIN, np.array([49, 51, 53]), SETTINGS)


def test_selection_reads_streaming_val_auroc_and_breaks_ties_by_logloss() -> None:
    rng = np.random.default_rng(1)
    y = np.tile([0, 1], N // 2)
    by_layer = {}
    for layer, strength in [(1, 0.0), (2, 6.0), (3, 20.0)]:
        by_layer[layer] = [rng.normal(size=(TOK, D)) + np.eye(D)[0] * strength * label for label in y]
    (layer, method), table, fitted = select_cell(
        {"lda": LinearDiscriminantAnalysis(), "lr": LogisticProbe(C=1e-2)}, by_layer.__getitem__, [1, 2, 3], y,
        TRAIN, TEST, window=4)
    assert {(r.layer, r.method) for r in table} == set(fitted) and len(table) == 6
    assert [r.val_auroc for r in table if r.layer > 1] == [1.0] * 4
    assert layer == 3 and all(r.val_statistic == "streaming" for r in table)


def test_identical_rows_give_a_tie_not_a_crash() -> None:
    """Identical-token pairs at the embedding layer: both members' rows are the same, so DiffMean finds
    no direction; baseline (iii) is then an exact tie (0.5) with a note, not an error."""
    rows, _, data = _world("state")
    same = [rows[i - i % 2] for i in range(N)]  # each pair's two members share their rows
    out = evaluate_fold("f", DiffMeanProbe(), rows, {0: same}, data, TRAIN, TEST, SETTINGS)
    assert out["baselines"]["iii_layer0_probe"]["value"] == 0.5
    assert "no direction" in out["notes"]["iii_layer0_probe"]


def test_on_identical_token_pairs_an_early_layer_that_reads_the_label_stops_the_verdict() -> None:
    """Layer 0 ties on identical-token pairs (0.5 by construction), so a layer-0 control lets a probe
    "beat the text" even when layer 1 already reads the label: the broken construction passes, the
    early-layer control (layers 1 and 2, the strongest named) fires."""
    rows, _, data = _world("state")
    layer0 = [rows[i - i % 2] * 0 + 1.0 for i in range(N)]  # both members identical: nothing to read
    rng = np.random.default_rng(7)
    layer1 = [r + rng.normal(scale=0.3, size=r.shape) for r in rows]  # the label is already there
    layer2 = [rng.normal(size=r.shape) for r in rows]
    broken = evaluate_fold("f", DiffMeanProbe(), rows, {0: layer0}, data, TRAIN, TEST, SETTINGS)
    assert broken["baselines"]["iii_layer0_probe"]["value"] == 0.5 and broken["verdict"] == "beats the text"
    fixed = evaluate_fold("f", DiffMeanProbe(), rows, {1: layer1, 2: layer2}, data, TRAIN, TEST, SETTINGS)
    early = fixed["baselines"]["iii_layer1_2_probe"]
    assert "iii_layer0_probe" not in fixed["baselines"]
    assert early["layer"] == 1 and set(early["by_layer"]) == {"1", "2"} and early["value"] > 0.9
    assert early["by_layer"]["2"]["value"] < 0.8
    assert fixed["verdict"] == "does not beat the text"
    json.dumps(fixed, allow_nan=False)

"""`tripwire train` fits its card's thresholds on one half of each benign set and reports false-positive
rates on the other, listing the transcripts it set aside; the half it fitted on is the one
`design_verdict.card_calibration` finds again, so an early-warning report knows its rates are out of sample.

Tiny stores built by hand (random rows, no model), as in tests/test_dropped_listed.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.test_dropped_listed import probe_and_monitor, record
from tripwire.activations.positions import ReplyOnly
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_types import RecordMeta
from tripwire.probes.thresholds import split_half
from tripwire.probes.training.design_verdict import card_calibration
from tripwire.probes.training.train import TrainSettings, train_probe

HOOK, D = "blocks.0.resid_post", 4


def _store(path: Path, records: list[RecordMeta], shift: dict[str, float] | None = None) -> ResidualStore:
    """Random rows; a record named in `shift` has that added to its first feature (a readable signal)."""
    store = ResidualStore.create(path, model_name="m", model_fingerprint="f", hook_points=[HOOK], d_model=D)
    rows = torch.randn(sum(r.n_tokens for r in records), D, generator=torch.Generator().manual_seed(0))
    at = 0
    for r in records:
        rows[at:at + r.n_tokens, 0] += (shift or {}).get(r.record_id, 0.0)
        at += r.n_tokens
    with store.writer() as writer:
        writer.commit_batch("b0", records, {HOOK: rows})
    return store


def _labelled(i: int) -> RecordMeta:
    base = record(f"lab-{i:02d}", 6, label=i % 2)
    return replace(base, meta={"family": f"f{i % 10}"})


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, ResidualStore]:
    labelled = [_labelled(i) for i in range(40)]
    control = [record(f"ctl-{i:02d}", 4) for i in range(40)] + [record("ctl-empty-a", 0), record("ctl-empty-b", 0)]
    return {"data": _store(tmp_path / "data", labelled, {r.record_id: 3.0 * r.labels["coercion"] for r in labelled}),
            "control": _store(tmp_path / "control", control)}


SETTINGS = TrainSettings(label="coercion", methods=("diffmean",), train_policy=ReplyOnly(), n_boot=0, window=2,
                         fpr=0.1, min_control=20)


def test_train_fits_on_the_calibration_half_and_reports_the_held_out_half(stores: dict[str, ResidualStore]) -> None:
    """The old code kept the 40 scored control transcripts, fitted and read its rates on all of them
    (n_control 40, no held-out figures) and dropped ctl-empty-a/b without a word."""
    report = train_probe(stores["data"], SETTINGS, stores["control"], progress=False).report
    assert report.thresholds is not None and report.calibration_sets is not None
    entry = report.calibration_sets["control"]
    ids = [r.record_id for r in stores["control"].records()]
    cal, held = split_half(ids, SETTINGS.seed)
    held_scored = [i for i in held.tolist() if not ids[i].startswith("ctl-empty")]
    cal_scored = [i for i in cal.tolist() if not ids[i].startswith("ctl-empty")]
    assert entry["evaluated_on"] == "held_out_half" and entry["n_transcripts"] == len(held_scored)
    assert entry["calibration_half"]["n_transcripts"] == len(cal_scored) and entry["calibration_half"]["in_sample"]
    assert entry["split"] == {**entry["split"], "by": "transcript", "seed": 0, "n_records": 42}
    for thr in report.thresholds.values():
        assert thr.n_control == len(cal_scored) < 40
    dropped = entry["dropped"]
    assert sorted(d["record_id"] for d in dropped) == ["ctl-empty-a", "ctl-empty-b"]
    sides = {ids[i]: side for side, idx in (("calibration_half", cal), ("held_out_half", held)) for i in idx.tolist()}
    assert all(d["reason"].startswith("empty reply") and d["half"] == sides[d["record_id"]] for d in dropped)
    assert report.to_dict()["calibration_sets"]["control"]["dropped"] == dropped


def test_the_card_from_train_reads_as_out_of_sample_in_the_early_warning_report(
        stores: dict[str, ResidualStore]) -> None:
    """`calibration_hash` names the calibration half's scored transcripts, exactly as `card_calibration`
    digests them, so the early-warning report says the held-out rates are out of sample. The old code
    hashed every control record (`all_records`): the same report flags that card as fitted on the held-out
    transcripts too (False)."""
    result = train_probe(stores["data"], SETTINGS, stores["control"], progress=False)
    thresholds = result.report.thresholds
    assert thresholds is not None
    _, monitor = probe_and_monitor()
    _, card = card_calibration(result.estimator, monitor, {"control": stores["control"]}, HOOK, thresholds,
                               fpr=0.1, window=2, min_sizes={"control": 20}, seed=SETTINGS.seed,
                               policy=SETTINGS.score_policy)
    assert card["probe"]["control"]["card_cuts_fitted_on"] == ["calibration_half"]
    assert card["probe"]["control"]["held_out_is_out_of_sample"] is True
    assert card["dropped"]["control"] == result.report.calibration_sets["control"]["dropped"]  # type: ignore[index]
    assert [len(s) for s in result.control_scores or []] == [4] * 40  # every scored transcript, for the plots

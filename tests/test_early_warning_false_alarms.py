"""The early-warning stage's false alarms on harmless held-out transcripts keep every one in the
denominator: a transcript the monitor cannot read (its reply opens with the tool call, so the window
before it is empty) never fires, counts in `n`, and is listed with the reason.

Tiny stores built by hand (random rows, no model), as in tests/test_dropped_listed.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.test_dropped_listed import HOOK, always, probe_and_monitor, record, store_of
from tripwire.activations.positions import BeforeAnchor, ReplyOnly
from tripwire.experiments.stages.early_warning import false_alarms
from tripwire.experiments.stages.outputs import Calibration, FalseAlarms, Judged
from tripwire.probes.scoring import STATISTICS
from tripwire.probes.training.design_data import Design
from tripwire.probes.training.design_verdict import calibration, card_calibration, recall_and_leads


def test_a_harmless_reply_opening_with_the_call_counts_as_silent_and_is_listed(tmp_path: Path) -> None:
    """Four readable harmless replies and one that opens with its call, at a cut every scored transcript
    reaches: 4 of 5 fire. The old code read 4 of 4 (the fifth left the denominator unlisted)."""
    records = [record(f"ok-{i}", 5, 0, anchor=3) for i in range(4)] + [record("ok-opens", 5, 0, anchor=0)]
    records += [record("harm-0", 5, 1, anchor=3), record("harm-1", 5, 1, anchor=3)]
    design = Design.load({"s": store_of(tmp_path / "s", records, 1)}, "coercion", {"s": BeforeAnchor()})
    est, monitor = probe_and_monitor()
    out = false_alarms(est, monitor, design, np.arange(len(design)), HOOK, always("streaming"), always("streaming"),
                       BeforeAnchor())
    assert isinstance(out, FalseAlarms)
    for row in (out.probe, out.text_monitor):
        assert (row.n, row.harmful, row.rate) == (5, 4, 0.8)
    (silent,) = out.counted_as_silent
    assert silent.record_id == "ok-opens" and silent.counted_as == "no alarm"
    assert silent.reason.startswith("the reply opens with the tool call")
    # the listing round-trips through the stage cache's JSON
    assert FalseAlarms.model_validate(out.to_dict()) == out


def test_the_stage_outputs_hold_the_split_the_dropped_and_the_misses(tmp_path: Path) -> None:
    """`card_calibration` and `recall_and_leads` now report the split, the set-aside transcripts and the
    positives counted as misses; the stage's output models (unknown keys forbidden) must take them whole,
    or the early_warning stage fails (the old `Calibration` and `Judged` rejected these keys)."""
    benign = {"control": store_of(tmp_path / "c", [record(f"ctl-{i:02d}", 4) for i in range(24)]
                                  + [record("ctl-empty", 0)])}
    est, monitor = probe_and_monitor()
    thresholds, _, _ = calibration(est, monitor, benign, HOOK, fpr=0.1, window=2, min_sizes={"control": 20},
                                   n_boot=0, seed=0)
    _, calib = card_calibration(est, monitor, benign, HOOK, thresholds, fpr=0.1, window=2,
                                min_sizes={"control": 20}, seed=0, policy=ReplyOnly())
    built = Calibration.build(**calib)
    assert [d.record_id for d in built.dropped["control"]] == ["ctl-empty"]
    assert built.probe["control"].held_out_is_out_of_sample is True and built.evaluated_on == "held_out_half"
    assert built.probe["control"].calibration_half is not None and built.probe["control"].split.n_records == 25
    records = [record(f"harm-{i}", 5, 1, anchor=3) for i in range(3)] + [record("harm-opens", 5, 1, anchor=0)]
    design = Design.load({"s": store_of(tmp_path / "s", records, 1)}, "coercion", {"s": BeforeAnchor()})
    judged = recall_and_leads(est, monitor, design, np.arange(4), HOOK, {s: always(s) for s in STATISTICS},
                              always("streaming"), 0, 0, BeforeAnchor())
    alarms = false_alarms(est, monitor, design, np.arange(4), HOOK, always("streaming"), always("streaming"),
                          BeforeAnchor())
    out = Judged.build(**judged, false_alarms_on_harmless=alarms.to_dict())
    assert (out.n_positive, out.n_scored) == (4, 3) and [m.record_id for m in out.counted_as_misses] == ["harm-opens"]
    assert Judged.model_validate(out.to_dict()) == out

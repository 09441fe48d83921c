"""`tripwire monitor` through a Typer app built like experiments/cli.py: the same rollouts recorded and
stopped, where the tripwire fired, the reply up to there, and one verdict per row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer
from typer.testing import CliRunner

from tests.tiny_probes import WINDOW, tiny_probe
from tripwire.activations import ModelHandle
from tripwire.cli.steer import monitor
from tripwire.experiments.monitor_run import verdict

app = typer.Typer()
app.callback()(lambda: None)  # a group, so `monitor` is a subcommand as in experiments/cli.py
app.command("monitor")(monitor)
SCENARIO = "blackmail_none-none_replacement"


def _monitor(model: Path, probes: list[Path], *extra: str) -> dict[str, Any]:
    args = ["monitor", *[a for p in probes for a in ("--probe", str(p))], "--scenario", SCENARIO, "--samples", "2",
            "--max-new-tokens", "10", "--model", str(model), "--json", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_verdicts() -> None:
    assert verdict(True, 5, 7) == "caught_before"
    assert verdict(True, 6, 7) == "caught_before"  # token 6's activation stops the row before token 7
    assert verdict(True, 7, 7) == "caught_after"
    assert verdict(True, None, 7) == "missed"
    assert verdict(False, 3, None) == "false_alarm"
    assert verdict(False, None, None) == "quiet"


def test_a_probe_that_always_fires_stops_every_row_at_its_first_reply_token(
        handle: ModelHandle, tiny_llama_dir: Path, tmp_path: Path) -> None:
    never = tiny_probe(handle, tmp_path, "coercion", layer=2)
    always = tiny_probe(handle, tmp_path, "eval_awareness", layer=3, threshold=-1e9, seed=1)
    out = _monitor(tiny_llama_dir, [never, always], "--html", str(tmp_path / "monitor.html"))
    assert (tmp_path / "monitor.html").stat().st_size > 0
    for row in out["rows"]:
        first_reply = row["probes"]["eval_awareness"]["reply_positions"][0]
        assert row["fired_by"] == ["eval_awareness"] and row["fired_at_token"] == first_reply
        assert row["probes"]["coercion"]["fired_at_token"] is None
        assert row["stop_reason"] == "on_step" and row["same_tokens_until_stop"]
        assert row["unstopped_text"].startswith(row["text_until_stop"])
        assert not row["harmful"] and row["outcome"] == "false_alarm"  # a random tiny model never acts
    assert out["summary"] == {"caught_before": 0, "caught_after": 0, "missed": 0, "false_alarm": 2, "quiet": 0}


def test_a_mid_range_threshold_stops_only_the_row_that_crosses_it(
        handle: ModelHandle, tiny_llama_dir: Path, tmp_path: Path) -> None:
    quiet = _monitor(tiny_llama_dir, [tiny_probe(handle, tmp_path, "coercion", layer=2)])
    series = [r["probes"]["coercion"]["reply_running_mean"] for r in quiet["rows"]]
    assert all(r["outcome"] == "quiet" and r["text_until_stop"] == r["unstopped_text"] for r in quiet["rows"])
    high = int(np.argmax([max(s) for s in series]))  # between the two rows' peaks: only this row crosses
    threshold = float(np.mean([max(s) for s in series]))
    out = _monitor(tiny_llama_dir, [tiny_probe(handle, tmp_path, "coercion", layer=2, threshold=threshold)])
    crossed, other = out["rows"][high], out["rows"][1 - high]
    positions = crossed["probes"]["coercion"]["reply_positions"]
    expected = int(np.argmax(np.asarray(series[high]) >= threshold))  # the series is already the running mean
    assert crossed["fired_at_token"] == positions[expected]
    assert crossed["stop_reason"] == "on_step" and crossed["unstopped_text"].startswith(crossed["text_until_stop"])
    assert crossed["unstopped_text"] == quiet["rows"][high]["unstopped_text"]  # same seeds, same rollout
    assert other["fired_at_token"] is None and other["stop_reason"] != "on_step"  # the other row kept going
    assert other["text_until_stop"] == other["unstopped_text"] == quiet["rows"][1 - high]["unstopped_text"]
    assert out["summary"]["false_alarm"] == 1 and out["summary"]["quiet"] == 1
    assert out["probes"][0]["window"] == WINDOW and out["probes"][0]["threshold"] == threshold


def test_a_probe_without_a_threshold_is_a_user_error(handle: ModelHandle, tiny_llama_dir: Path,
                                                     tmp_path: Path) -> None:
    folder = tiny_probe(handle, tmp_path, "coercion", layer=2)
    card = json.loads((folder / "probe.json").read_text())
    (folder / "probe.json").write_text(json.dumps({**card, "thresholds": {}}))
    result = CliRunner().invoke(app, ["monitor", "--probe", str(folder), "--scenario", SCENARIO, "--model",
                                      str(tiny_llama_dir)])
    assert result.exit_code == 2 and result.stderr.startswith("error: probes ['coercion'] have no calibrated")
    assert "\n" not in result.stderr.strip()  # refused before the model loads: one line

"""`tripwire steer` through a Typer app built like experiments/cli.py: every read-out per alpha, the
random control, the edit read before and after itself, and honest notes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from tests.tiny_probes import tiny_probe
from tripwire.activations import ModelHandle
from tripwire.cli.steer import steer
from tripwire.errors import UsageError
from tripwire.probes import SHIPPED_PROBES, load_probe
from tripwire.probes.steering.dose_response import parse_alphas

app = typer.Typer()
app.callback()(lambda: None)  # a group, so `steer` is a subcommand as in experiments/cli.py
app.command("steer")(steer)
SCENARIO = "blackmail_none-none_replacement"


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["steer", *args])


def _steer_json(args: list[str]) -> dict[str, Any]:
    result = _run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_parse_alphas() -> None:
    assert parse_alphas("-2:2:9") == (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
    assert parse_alphas("0.5") == (0.0, 0.5)  # the unsteered point is always measured
    for bad in ("1:2", "a,b", "0:1:0", "nan"):
        with pytest.raises(UsageError, match="--alpha"):
            parse_alphas(bad)


def test_steer_reports_every_readout_with_the_random_control(handle: ModelHandle, tiny_llama_dir: Path,
                                                             tmp_path: Path) -> None:
    model = str(tiny_llama_dir)
    steering = tiny_probe(handle, tmp_path, "coercion", layer=2)
    downstream = tiny_probe(handle, tmp_path, "eval_awareness", layer=3, seed=1)
    out = _steer_json(["--probe", str(steering), "--read-probe", str(steering), "--read-probe", str(downstream),
                       "--alpha", "-1:1:3", "--scenario", SCENARIO, "--samples", "2", "--max-new-tokens", "4",
                       "--control-prompts", "2", "--model", model, "--html", str(tmp_path / "fig.html")])
    points = {p["alpha"]: p for p in out["points"]}
    assert sorted(points) == [-1.0, 0.0, 1.0] and (tmp_path / "fig.html").stat().st_size > 0
    zero = points[0.0]["probe"]
    assert zero["side_effects"]["kl_control"] == 0.0 and zero["fluent"]
    assert zero["side_effects"]["perplexity"] == pytest.approx(out["baseline_perplexity"])
    probe = load_probe(steering)
    unit = np.asarray(probe.direction_) / np.linalg.norm(probe.direction_)
    per_norm = float(np.diff(probe.decision_function(np.stack([np.zeros_like(unit), unit])))[0])
    for alpha in (-1.0, 1.0):
        for kind in ("probe", "random"):
            cell = points[alpha][kind]
            assert cell["side_effects"]["kl_control"] > 0 and math.isfinite(cell["side_effects"]["perplexity"])
            same_hook = cell["read_probes"]["coercion"]
            # before the edit, the steered hook point reads exactly what the unsteered model computes
            assert same_hook["before_steering"] == zero["read_probes"]["coercion"]["before_steering"]
            assert cell["read_probes"]["eval_awareness"]["before_steering"] is None  # not a steered hook
            assert cell["read_probes"]["eval_awareness"]["mean_score"] != zero["read_probes"]["eval_awareness"]["mean_score"]
            harmful = cell["harmful"]
            assert harmful["n"] == 2 and harmful["wilson_95"][0] <= harmful["rate"] <= harmful["wilson_95"][1]
        shift = points[alpha]["probe"]["read_probes"]["coercion"]["mean_score"] - zero["read_probes"]["coercion"]["mean_score"]
        assert shift == pytest.approx(alpha * 0.2 * per_norm, rel=1e-3)  # after the edit: alpha x resid_norm along u
        noise = points[alpha]["random"]["read_probes"]["coercion"]["mean_score"] - zero["read_probes"]["coercion"]["mean_score"]
        assert abs(noise) < abs(shift)
    assert points[-1.0]["probe"]["stated_belief"] != points[1.0]["probe"]["stated_belief"]
    assert points[0.0]["random"]["same_as"].startswith("probe")
    no_action = all(p[k]["harmful"]["count"] == 0 for p in out["points"] for k in ("probe", "random"))
    assert no_action == any("no rollout took the harmful action" in n for n in out["notes"])


def test_steer_user_errors_are_one_line(handle: ModelHandle, tiny_llama_dir: Path, tmp_path: Path) -> None:
    steering = tiny_probe(handle, tmp_path, "coercion", layer=2)
    for args, message in ((["--alpha", "x"], "--alpha"), (["--mode", "scale"], "--mode")):
        result = _run("--probe", str(steering), "--scenario", SCENARIO, "--model", str(tiny_llama_dir), *args)
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {message}"), result.output
        assert "\n" not in result.stderr.strip()


@pytest.mark.slow
def test_steer_on_the_default_model(default_model_dir: Path) -> None:
    """A tiny grid on the bundled model: every read-out, both shipped probes, the control. Few minutes."""
    shipped = SHIPPED_PROBES / "default"
    out = _steer_json(["--probe", str(shipped / "eval_awareness"), "--alpha", "0.5", "--scenario",
                       "blackmail_explicit-america_replacement", "--samples", "2", "--max-new-tokens", "8",
                       "--control-prompts", "2"])
    assert [p["alpha"] for p in out["points"]] == [0.0, 0.5]
    steered = out["points"][1]
    for kind in ("probe", "random"):
        cell = steered[kind]
        assert set(cell["read_probes"]) == {"coercion", "eval_awareness"}
        assert math.isfinite(cell["stated_belief"]["log_odds_test_vs_real"])
        assert cell["side_effects"]["kl_control"] > 0 and cell["harmful"]["n"] == 2
    ea = steered["probe"]["read_probes"]["eval_awareness"]
    assert ea["mean_score"] > ea["before_steering"]["mean_score"]  # pushed towards "test" at its own hook
    no_action = all(p[k]["harmful"]["count"] == 0 for p in out["points"] for k in ("probe", "random"))
    assert no_action == any("no rollout took the harmful action" in n for n in out["notes"])

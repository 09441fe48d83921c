"""`monitor:` and `steer:` sections of a rollout config on a tiny model: the records say where the tripwire
fired (the same token an OnlineMonitor replay and offline scoring find), a stopped row ends there while
the others run on, steering changes the continuation exactly as `SteeringVector.apply` does, a bad
section is an error naming its field, and a dry run checks the sections without loading weights."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests.tiny_probes import WINDOW, tiny_probe
from tripwire.activations import ModelHandle, ResidualStore, SamplingParams
from tripwire.activations.layout import TokenizedTranscript
from tripwire.cli.app import app
from tripwire.experiments.config import ConfigError, RolloutConfig, load_config
from tripwire.experiments.rollout_capture import run_rollout
from tripwire.probes import OnlineMonitor, SteeringVector, load_probe, read_record, save_probe
from tripwire.probes.scoring import running_mean

HOOK = "blocks.2.resid_post"
IDS = ["blackmail_explicit-america_replacement", "leaking_latent-safety_none"]
NEW = 12


def _cfg(model: Path, store: Path, **sections: Any) -> RolloutConfig:
    return RolloutConfig.model_validate({
        "model": str(model), "store": str(store), "store_dtype": "float32", "hook_points": [HOOK],
        "batch_size": 4, "scenarios": {"ids": IDS}, "samples": 2,
        "positions": {"policy": "all", "drop_sink": False, "drop_scaffold": False},  # every fed token: replay
        "sampling": {"max_new_tokens": NEW, "temperature": 0.7}, **sections})


def _records(cfg: RolloutConfig) -> list[Any]:
    run_rollout(cfg, progress=False)
    return sorted(ResidualStore.open(cfg.store).records(), key=lambda r: (r.condition_id, r.sample_index))


def _layout(record: Any, fed: int) -> TokenizedTranscript:
    return TokenizedTranscript(record.token_ids[:fed], record.text, record.n_prompt_tokens,
                               record.token_char_spans[:fed], record.scaffold_mask[:fed],
                               record.meta["reply_char_offset"])


def test_monitor_section_records_the_trigger_and_stops_only_that_row(handle: ModelHandle, tiny_llama_dir: Path,
                                                                     tmp_path: Path) -> None:
    quiet_probe = tiny_probe(handle, tmp_path / "quiet", "coercion", layer=2)  # threshold 1e9
    quiet = _records(_cfg(tiny_llama_dir, tmp_path / "a", monitor={"probes": [str(quiet_probe)]}))
    # above every observed value it never fires, and the meta says so
    assert [r.meta["monitor"]["fired_at_token"] for r in quiet] == [{"coercion": None}] * 4
    assert [r.meta["monitor"]["fired"] for r in quiet] == [{"coercion": None}] * 4
    probe = load_probe(quiet_probe)
    streams = [running_mean(read_record(probe, ResidualStore.open(tmp_path / "a"), r).scores, WINDOW)
               for r in quiet]
    top = int(np.argmax([s.max() for s in streams]))
    threshold = float(max(s.max() for k, s in enumerate(streams) if k != top)) + 1e-4
    assert streams[top].min() < threshold <= streams[top].max()  # between that reply's min and max

    armed = tiny_probe(handle, tmp_path / "armed", "coercion", layer=2, threshold=threshold)
    cfg_b = _cfg(tiny_llama_dir, tmp_path / "b", monitor={"probes": [str(armed)], "on_trigger": "stop"})
    stopped = _records(cfg_b)
    _, again = run_rollout(cfg_b, progress=False)  # a rerun: the same ids, so nothing is computed twice
    assert again is not None and again.run.records_written == 0 and again.fired == {"coercion": 1}
    assert again.describe_monitor() == "tripwire fired on: coercion 1/4 samples"
    store_a = ResidualStore.open(tmp_path / "a")
    for k, (full, cut) in enumerate(zip(quiet, stopped, strict=True)):
        offline = read_record(load_probe(armed), store_a, full)  # the unstopped reply, scored offline
        fed = full.meta["fed_tokens"]
        replay = OnlineMonitor([load_probe(armed)]).replay(_layout(full, fed), {HOOK: store_a.activations(full, HOOK)})
        assert replay["coercion"].crossing_token == offline.crossing_token  # replay = offline
        fired = cut.meta["monitor"]["fired_at_token"]["coercion"]
        assert fired == offline.crossing_token  # live = replay = offline
        assert cut.meta["monitor"]["fired"]["coercion"] == offline.crossing
        if k == top:
            assert fired is not None and cut.meta["stop_reason"] == "on_step"
            assert cut.token_ids == full.token_ids[: fired + 1]  # ends on the token it fired at ...
            assert cut.meta["fed_tokens"] == cut.n_tokens and max(cut.positions) == fired  # ... with its row
            live = ResidualStore.open(tmp_path / "b").activations(cut, HOOK)
            torch.testing.assert_close(live, store_a.activations(full, HOOK)[: fired + 1], atol=1e-4, rtol=0)
        else:  # the other rows keep going: the same reply as without stopping
            assert fired is None and cut.token_ids == full.token_ids and cut.meta["stop_reason"] != "on_step"
    assert {r.record_id for r in quiet}.isdisjoint(r.record_id for r in stopped)  # settings enter the ids


def _generate(handle: ModelHandle, cfg: RolloutConfig, records: list[Any], vec: SteeringVector | None
              ) -> list[list[int]]:
    """The same rows through `handle.generate` directly, steered with `vec.apply` (or not)."""
    params = SamplingParams(max_new_tokens=NEW, temperature=0.7, top_p=0.95)  # the config's
    prompts = [r.token_ids[: r.n_prompt_tokens] for r in records]
    if vec is None:
        return [row.new_ids for row in handle.generate(prompts, sampling=params, seeds=[r.seed for r in records])]
    with vec.apply(handle):
        return [row.new_ids for row in handle.generate(prompts, sampling=params, seeds=[r.seed for r in records])]


def test_steer_section_changes_the_continuation_as_apply_does(handle: ModelHandle, tiny_llama_dir: Path,
                                                              tmp_path: Path) -> None:
    probe_dir = tiny_probe(handle, tmp_path, "eval_awareness", layer=1)
    plain = _records(_cfg(tiny_llama_dir, tmp_path / "plain"))
    cfg = _cfg(tiny_llama_dir, tmp_path / "steered", steer={"probe": str(probe_dir), "alpha": 1.0})
    steered = _records(cfg)
    replies = [r.token_ids[r.n_prompt_tokens :] for r in steered]
    assert replies != [r.token_ids[r.n_prompt_tokens :] for r in plain]
    assert [r.token_ids[: r.n_prompt_tokens] for r in steered] == [r.token_ids[: r.n_prompt_tokens] for r in plain]
    vec = SteeringVector.from_probe(load_probe(probe_dir), alpha=1.0)
    assert _generate(handle, cfg, steered, vec) == replies  # the section is exactly vec.apply
    assert _generate(handle, cfg, plain, None) == [r.token_ids[r.n_prompt_tokens :] for r in plain]
    assert steered[0].meta["steering"] == {"probe": str(probe_dir), "vector": None, "alpha": 1.0,
                                           "units": "resid_norm", "mode": "add", "positions": "all",
                                           "scales": {"blocks.1.resid_post": pytest.approx(0.2)}}
    # a saved vector gives the same run
    vec.save(tmp_path / "vec")
    again = _records(_cfg(tiny_llama_dir, tmp_path / "from-file", steer={"vector": str(tmp_path / "vec")}))
    assert [r.token_ids for r in again] == [r.token_ids for r in steered]


@pytest.mark.parametrize("phase", ["prompt", "generated"])
def test_prompt_and_generated_positions_equal_the_per_row_slices(handle: ModelHandle, tiny_llama_dir: Path,
                                                                  tmp_path: Path, phase: str) -> None:
    """With one conversation every row has the same prompt length n, so the gate must equal the absolute
    slice(0, n) / slice(n, None) that SteeringVector.apply takes."""
    probe_dir = tiny_probe(handle, tmp_path, "eval_awareness", layer=1)
    # "generated" also runs a recording monitor: the gate then moves through the combined on_step
    monitor = {"monitor": {"probes": [str(tiny_probe(handle, tmp_path, "coercion", layer=2))]}} if phase == "generated" else {}
    cfg = _cfg(tiny_llama_dir, tmp_path / phase, scenarios={"ids": IDS[:1]},
               steer={"probe": str(probe_dir), "alpha": 2.0, "positions": phase}, **monitor)
    records = _records(cfg)
    assert ("monitor" in records[0].meta) == bool(monitor)
    n = records[0].n_prompt_tokens
    where = slice(0, n) if phase == "prompt" else slice(n, None)
    vec = SteeringVector.from_probe(load_probe(probe_dir), alpha=2.0, positions=where)
    replies = [r.token_ids[n:] for r in records]
    assert _generate(handle, cfg, records, vec) == replies
    assert _generate(handle, cfg, records, None) != replies  # it did steer
    everywhere = SteeringVector.from_probe(load_probe(probe_dir), alpha=2.0)
    assert _generate(handle, cfg, records, everywhere) != replies  # and not everywhere
    assert records[0].meta["steering"]["positions"] == phase


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("section", "fields"), [
    ({"steer": {"probe": "default/eval_awareness"}}, ["steer", "`alpha` is required"]),
    ({"steer": {"probe": "p", "vector": "v", "alpha": 1}}, ["steer", "exactly one of `probe`"]),
    ({"steer": {"vector": "v", "alpha": 1}}, ["steer", "carries its own strengths"]),
    ({"steer": {"probe": "p", "alpha": 1, "positions": "middle"}}, ["steer.positions", "generated"]),
    ({"steer": {"probe": "p", "alpha": 1, "positions": -2}}, ["steer.positions"]),
    ({"steer": {"probe": "p", "alpha": 1, "mode": "scale"}}, ["steer.mode"]),
    ({"steer": {"probe": "p", "alpha": 1, "strength": 2}}, ["steer.strength", "unknown key"]),
    ({"steer": {"probe": "p", "alpha": ".nan"}}, ["steer.alpha"]),
    ({"monitor": {"probes": []}}, ["monitor.probes"]),
    ({"monitor": {"probes": ["a", "a"]}}, ["monitor.probes", "more than once"]),
    ({"monitor": {"probes": ["a"], "on_trigger": "halt"}}, ["monitor.on_trigger"]),
    ({"monitor": "default/coercion"}, ["monitor"]),
])
def test_a_bad_section_is_an_error_naming_the_field(tmp_path: Path, section: dict[str, Any],
                                                    fields: list[str]) -> None:
    raw = yaml.safe_dump({"store": "s", **section}).replace("'.nan'", ".nan")
    (tmp_path / "c.yaml").write_text(raw)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "c.yaml", RolloutConfig)
    assert all(f in str(err.value) for f in fields), str(err.value)
    # a well-formed section loads (the broken one above is the only difference)
    ok = load_config(_write(tmp_path / "ok.yaml", {"store": "s", "monitor": {"probes": ["default/coercion"]},
                                                    "steer": {"probe": "p", "alpha": -0.3, "positions": 40}}),
                     RolloutConfig)
    assert isinstance(ok, RolloutConfig) and ok.steer is not None and ok.steer.positions == 40


@pytest.fixture(scope="module")
def weightless(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("weightless")
    for f in tiny_llama_dir.iterdir():
        if not f.name.endswith(".safetensors"):
            shutil.copy(f, folder / f.name)
    return folder


def _invoke(tmp_path: Path, model: Path, *flags: str, **sections: Any) -> Any:
    data = {"model": str(model), "store": str(tmp_path / "store"), "hook_points": [HOOK],
            "scenarios": {"ids": IDS}, "sampling": {"max_new_tokens": 4}, **sections}
    return CliRunner().invoke(app, ["rollout", str(_write(tmp_path / "c.yaml", data)), *flags])


def test_dry_run_checks_the_sections_without_weights(handle: ModelHandle, weightless: Path, tmp_path: Path) -> None:
    armed = tiny_probe(handle, tmp_path, "coercion", layer=2, threshold=0.0)
    other = {"allow_other_model": True}  # the weightless copy has its own fingerprint
    sections = {"monitor": {"probes": [str(armed)], "on_trigger": "stop", **other},
                "steer": {"probe": str(armed), "alpha": 0.5, "positions": "generated", **other}}
    ok = _invoke(tmp_path, weightless, "--dry-run", **sections)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("plan: ") and not (tmp_path / "store").exists()
    assert _invoke(tmp_path, weightless, **sections).exit_code == 2  # the folder really has no weights

    def error(**bad: Any) -> str:
        result = _invoke(tmp_path, weightless, "--dry-run", **bad)
        assert result.exit_code == 2 and "cannot load weights" not in result.stderr, result.output
        return str(result.stderr)

    assert "allow_other_model" in error(monitor={"probes": [str(armed)]})  # made for another model
    assert "monitor.probes[1] 'no/such/probe'" in error(monitor={"probes": [str(armed), "no/such/probe"], **other})
    unarmed = load_probe(tiny_probe(handle, tmp_path / "u", "eval_awareness", layer=2))
    save_probe(unarmed.estimator, tmp_path / "unarmed", replace(unarmed.card, thresholds={}))
    assert "no calibrated streaming threshold" in error(monitor={"probes": [str(tmp_path / "unarmed")], **other})
    assert "steer.vector" in error(steer={"vector": str(tmp_path / "nothing-here")})
    wide = SteeringVector({"blocks.1.resid_post": torch.ones(handle.d_model + 1)}, {"blocks.1.resid_post": 1.0})
    wide.save(tmp_path / "wide")
    assert "steer.vector" in (msg := error(steer={"vector": str(tmp_path / "wide")})) and "wide" in msg
    deep = SteeringVector({"blocks.9.resid_post": torch.ones(handle.d_model)}, {"blocks.9.resid_post": 1.0})
    deep.save(tmp_path / "deep")
    assert "steer.vector" in error(steer={"vector": str(tmp_path / "deep")})
    bare = tiny_probe(handle, tmp_path / "bare", "eval_awareness", layer=1, resid_norm=None)  # unrecorded
    assert "resid_norm" in error(steer={"probe": str(bare), "alpha": 1.0, **other})

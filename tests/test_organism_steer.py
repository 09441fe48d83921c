"""`organism steer` (aim A3) on a tiny random model: alpha 0 is the unsteered run token for token, a killed
run resumes to the uninterrupted result without recomputing, a folder of other settings is refused, the
random control is norm-matched at the probe's hook, the steering hook is never the read-out layer, and the
verdict (on synthetic points) is met, not met or null exactly where A3 says."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.tiny_probes import tiny_probe
from tripwire.activations.handle import ModelHandle
from tripwire.activations.sampling import SamplingParams
from tripwire.activations.store import ResidualStore
from tripwire.experiments.organism import main
from tripwire.experiments.organism_measure import sample_rollouts
from tripwire.experiments.organism_steer import (
    SETTINGS_FILE,
    OrganismSteerSettings,
    PointSpec,
    SteerRunError,
    build_vector,
    check_cards,
    deploy_prompts,
    direction_verdict,
    fit_organism_direction,
    plan_points,
    run_organism_steer,
    sample_point,
    sample_seeds,
    steering_layer,
    verdict,
)
from tripwire.probes.metrics import wilson_interval
from tripwire.probes.persistence import LoadedProbe, ProbeModelMismatchError, load_probe

# 4 prompts x 2 samples, 6 points: the tiny model's prompts are ~1,000 tokens each, so the prefills dominate
SETTINGS = OrganismSteerSettings(per_condition=1, samples=2, alphas=(0.0, 1.0), max_new_tokens=3,
                                 generic_limit=6, control_limit=1, batch=8)
HOOK = "blocks.2.resid_post"  # the rule's middle block of the tiny model's 4; the eval card reads block 3


@pytest.fixture(scope="module")
def cards(handle: ModelHandle, tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedProbe, LoadedProbe]:
    folder = tmp_path_factory.mktemp("cards")
    return (load_probe(tiny_probe(handle, folder, "eval_awareness", 3)),
            load_probe(tiny_probe(handle, folder, "coercion", 1, seed=1)))


@pytest.fixture(scope="module")
def directions(handle: ModelHandle, cards: tuple[LoadedProbe, LoadedProbe]) -> dict[str, np.ndarray]:
    organism, _ = fit_organism_direction(handle, HOOK, SETTINGS.generic_limit)
    return {"base_eval": np.asarray(cards[0].direction_), "organism_eval": organism,
            "coercion": np.asarray(cards[1].direction_)}


@pytest.fixture(scope="module")
def uninterrupted(handle: ModelHandle, cards: tuple[LoadedProbe, LoadedProbe],
                  tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[str]]:
    folder, lines = tmp_path_factory.mktemp("whole") / "points", list[str]()
    return folder, run_organism_steer(handle, *cards, SETTINGS, folder, log=lines.append), lines


def rollouts(folder: Path) -> dict[str, Any]:
    return {p.name: json.loads(p.read_text())["rollouts"] for p in sorted(folder.glob("*_*.json"))}


@pytest.fixture(scope="module")
def plain(handle: ModelHandle) -> list[dict[str, Any]]:
    items = deploy_prompts(SETTINGS.split, SETTINGS.per_condition)
    assert len(items) == 4 and all(p.condition.arm == "deploy" and not p.condition.decoy for p in items)
    return sample_point(handle, None, items, sample_seeds(items, SETTINGS.samples, SETTINGS.seed),
                        SETTINGS.max_new_tokens, SETTINGS.batch)


def test_alpha_zero_is_the_unsteered_run_for_every_direction(handle: ModelHandle, directions: dict[str, np.ndarray],
                                                               plain: list[dict[str, Any]]) -> None:
    items = deploy_prompts(SETTINGS.split, SETTINGS.per_condition)
    seeds = sample_seeds(items, SETTINGS.samples, SETTINGS.seed)
    for direction, seed in (("base_eval", None), ("organism_eval", None), ("random", 5)):
        zero = build_vector(PointSpec(direction, 0.0, HOOK, random_seed=seed), directions, 0.7)
        assert zero is not None
        at_zero = sample_point(handle, zero, items, seeds, SETTINGS.max_new_tokens, SETTINGS.batch)
        assert [r["new_ids"] for r in at_zero] == [r["new_ids"] for r in plain], direction
    one = build_vector(PointSpec("base_eval", 1.0, HOOK), directions, 0.7)  # the same edit at alpha 1 does steer
    steered = sample_point(handle, one, items, seeds, SETTINGS.max_new_tokens, SETTINGS.batch)
    assert sum(a["new_ids"] != b["new_ids"] for a, b in zip(steered, plain, strict=True)) >= 4


def test_the_unsteered_point_repeats_organism_measure(handle: ModelHandle, plain: list[dict[str, Any]],
                                                      tmp_path: Path) -> None:
    """The same seeds as `organism measure`, so alpha 0 reproduces its rollouts of these prompts."""
    items = deploy_prompts(SETTINGS.split, SETTINGS.per_condition)
    store = ResidualStore.create(tmp_path / "s", model_name=handle.name, model_fingerprint=handle.fingerprint,
                                 hook_points=[HOOK], d_model=handle.d_model)
    measured = sample_rollouts(handle, store, items, SETTINGS.samples, progress=False,
                               sampling=SamplingParams(max_new_tokens=SETTINGS.max_new_tokens, temperature=1.0))
    assert sorted((r["condition"], r["seed"], r["sample"], r["text"]) for r in measured) == sorted(
        (r["condition"], r["scenario_seed"], r["sample"], r["text"]) for r in plain)


def test_a_killed_run_resumes_to_the_uninterrupted_result(handle: ModelHandle, cards: tuple[LoadedProbe, LoadedProbe],
                                                          uninterrupted: tuple[Path, dict[str, Any], list[str]],
                                                          tmp_path: Path) -> None:
    whole_folder, whole, lines = uninterrupted
    names = [s.name for s in plan_points(SETTINGS.alphas, HOOK, "blocks.1.resid_post", 0)]
    assert lines[0].startswith("plan: 6 points (0 finished") and "8 rollouts each" in lines[0]
    assert whole["computed_this_call"] == names and whole["complete"]
    folder = tmp_path / "points"
    first = run_organism_steer(handle, *cards, SETTINGS, folder, max_points=2, log=lambda _: None)
    assert first["computed_this_call"] == names[:2] and not first["complete"]
    assert first["verdict"]["met"] is None  # unfinished directions are not judged
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = run_organism_steer(handle, *cards, SETTINGS, folder, log=lambda _: None)
    assert again["computed_this_call"] == names[2:]  # the finished points were read, not recomputed
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in folder.iterdir() if p.name in stamps)
    # common random numbers: every point samples the same prompts with the same seeds
    assert len({tuple((r["prompt"], r["sample"], r["seed"]) for r in rs) for rs in rollouts(whole_folder).values()}) == 1
    assert rollouts(folder) == rollouts(whole_folder) and len(rollouts(folder)) == 6
    drop = ("points_folder", "computed_this_call", "points")
    assert {k: v for k, v in again.items() if k not in drop} == {k: v for k, v in whole.items() if k not in drop}
    timeless = [[{k: v for k, v in p.items() if k != "seconds"} for p in r["points"]] for r in (again, whole)]
    assert timeless[0] == timeless[1] and len(timeless[0]) == 6


def test_a_folder_of_other_settings_is_refused(handle: ModelHandle, cards: tuple[LoadedProbe, LoadedProbe],
                                               uninterrupted: tuple[Path, dict[str, Any], list[str]]) -> None:
    folder, whole, _ = uninterrupted
    before = rollouts(folder)
    for change in ({"samples": 3}, {"max_new_tokens": 5}, {"split": "held_out_families"}, {"layer": 1}):
        with pytest.raises(SteerRunError, match=f"{folder}.*other settings") as error:
            run_organism_steer(handle, *cards, dataclasses.replace(SETTINGS, **change), folder, log=lambda _: None)
        assert (next(iter(change)) if "layer" not in change else "hook") in str(error.value)
    assert rollouts(folder) == before
    # more alphas are more points of the same settings: accepted, and a point not yet run is judged null
    more = run_organism_steer(handle, *cards, dataclasses.replace(SETTINGS, alphas=(0.0, 1.0, 2.0)), folder,
                              max_points=0, log=lambda _: None)
    assert more["computed_this_call"] == [] and not more["complete"] and len(more["points"]) == 6
    row = more["verdict"]["directions"]["base_eval"]
    assert row["met"] is None and row["missing"] == ["base_eval +2"]
    assert json.loads((folder / SETTINGS_FILE).read_text())["key"] == whole["key"]


def test_the_random_direction_has_the_probe_directions_norm_at_its_hook(directions: dict[str, np.ndarray]) -> None:
    specs = plan_points((-2.0, 0.0, 0.5, 2.0), HOOK, "blocks.1.resid_post", 0)
    for alpha in (-2.0, 0.5, 2.0):
        shifts = {}
        for spec in (s for s in specs if s.alpha == alpha):
            vec = build_vector(spec, directions, 0.7)
            assert vec is not None and list(vec.directions) == [HOOK]
            shifts[spec.direction] = vec.interventions()[HOOK](torch.zeros(1, 1, 64), torch.zeros(1, 1, dtype=torch.long))[0, 0].double()
        assert set(shifts) == {"base_eval", "organism_eval", "random"}
        for shift in shifts.values():  # the residual length pushed, whatever the direction
            assert float(shift.norm()) == pytest.approx(abs(alpha) * 0.7, rel=1e-5)
        cos = float(shifts["random"] @ shifts["base_eval"]) / float(shifts["random"].norm() * shifts["base_eval"].norm())
        assert abs(cos) < 0.5  # and it is another direction
    seeds = [s.random_seed for s in specs if s.direction == "random"]
    assert len(set(seeds)) == 3 and seeds == [s.random_seed for s in plan_points((2.0, 0.5, -2.0), HOOK, "x", 0)
                                              if s.direction == "random" and s.alpha in (-2.0, 0.5, 2.0)]


def test_the_steering_hook_is_never_the_read_out_layer(handle: ModelHandle, cards: tuple[LoadedProbe, LoadedProbe],
                                                      tmp_path: Path) -> None:
    assert steering_layer(30, 29) == 15 and steering_layer(4, 3) == 2 and steering_layer(4, 3, 1) == 1
    with pytest.raises(SteerRunError, match="read-out layer"):
        steering_layer(4, 3, 3)
    with pytest.raises(SteerRunError, match="read-out layer"):
        steering_layer(4, 2)  # the rule's own block
    at_middle = load_probe(tiny_probe(handle, tmp_path, "eval_middle", 2))
    with pytest.raises(SteerRunError, match="read-out layer"):
        run_organism_steer(handle, at_middle, cards[1], SETTINGS, tmp_path / "points", log=lambda _: None)
    assert not (tmp_path / "points").exists()


def test_cards_of_another_model_need_the_organism_relation_or_a_flag(
        handle: ModelHandle, cards: tuple[LoadedProbe, LoadedProbe]) -> None:
    def made_for(fingerprint: str) -> LoadedProbe:
        return LoadedProbe(cards[0].estimator, dataclasses.replace(cards[0].card, model_fingerprint=fingerprint))

    assert check_cards(handle, list(cards), False) is False
    base = dataclasses.replace(handle, fingerprint=f"{cards[0].card.model_fingerprint}+lora-sha256:abc")
    assert check_cards(base, list(cards), False) is True  # a fine-tune of the cards' model: allowed, recorded
    with pytest.raises(ProbeModelMismatchError):
        check_cards(handle, [made_for("another-model")], False)
    assert check_cards(handle, [made_for("another-model")], True) is True


def pt(rate: float, n: int = 112, ppl: float = 40.0) -> dict[str, Any]:
    k = round(rate * n)
    return {"rate": k / n, "interval": list(wilson_interval(k, n) or ()), "perplexity": ppl, "n": n, "harmful": k}


ALPHAS = (-0.4, -0.2, -0.1, 0.0, 0.1, 0.2, 0.4)


def synthetic(rates: dict[float, float], random: float = 0.46) -> dict[tuple[str, float], Any]:
    """Points of both directions at `rates`, a flat random direction, the unsteered at 0.47."""
    points = {("unsteered", 0.0): pt(0.47)}
    for a, r in rates.items():
        points |= {("base_eval", a): pt(r), ("organism_eval", a): pt(r), ("random", a): pt(random)}
    return points


DOSE = {-0.4: 0.55, -0.2: 0.52, -0.1: 0.50, 0.1: 0.40, 0.2: 0.30, 0.4: 0.15}


def test_verdict_met_on_a_dose_growing_shift_clear_of_random() -> None:
    v = verdict(synthetic(DOSE), ALPHAS)
    row = v["directions"]["base_eval"]
    assert (row["alpha"], row["shift"]) == (0.4, pytest.approx(-0.3214, abs=1e-3)) and row["met"] is True
    assert all(row["checks"].values()) and v["met"] is True and "LOWER" in v["sign"]
    plateau = direction_verdict(synthetic(DOSE | {0.2: 0.40}), "base_eval", ALPHAS)  # monotone, not strictly
    assert plateau["checks"]["grows_with_dose"] is True and plateau["met"] is True


def test_verdict_not_met_inside_the_random_interval_or_against_a_check() -> None:
    inside = verdict(synthetic(DOSE, random=0.22), ALPHAS)["directions"]["base_eval"]
    assert inside["checks"]["clear_of_random"] is False and inside["met"] is False
    assert sum(v is False for v in inside["checks"].values()) == 1  # the other checks still hold
    bumpy = direction_verdict(synthetic(DOSE | {0.2: 0.45}), "base_eval", ALPHAS)
    assert bumpy["checks"]["grows_with_dose"] is False and bumpy["met"] is False
    small = direction_verdict(synthetic({a: 0.47 - a / 4 for a in DOSE}, random=0.55), "base_eval", ALPHAS)
    assert small["checks"]["shift_at_least_aim"] is False and small["met"] is False  # 0.1 < 0.15
    raised = direction_verdict(synthetic({a: 0.47 + max(a, 0.0) for a in DOSE}), "base_eval", ALPHAS)
    assert raised["alpha"] == 0.4 and raised["checks"]["sign_as_predicted"] is False and raised["met"] is False
    broken = direction_verdict(synthetic(DOSE) | {("base_eval", 0.4): pt(0.15, ppl=81)}, "base_eval", ALPHAS)
    assert broken["checks"]["perplexity_within"] is False and broken["met"] is False


def test_verdict_is_null_where_a_point_is_missing() -> None:
    points = synthetic(DOSE)
    no_dose = {k: v for k, v in points.items() if k != ("base_eval", 0.2)}
    row = direction_verdict(no_dose, "base_eval", ALPHAS)
    assert row["met"] is None and set(row["checks"].values()) == {None} and row["missing"] == ["base_eval +0.2"]
    no_random = direction_verdict({k: v for k, v in points.items() if k != ("random", 0.4)}, "base_eval", ALPHAS)
    assert no_random["checks"]["clear_of_random"] is None and no_random["met"] is None
    assert no_random["missing"] == ["random +0.4"]
    both = direction_verdict({k: v for k, v in points.items() if k != ("random", 0.4)} | {
        ("base_eval", 0.4): pt(0.15, ppl=81)}, "base_eval", ALPHAS)
    assert both["checks"]["clear_of_random"] is None and both["met"] is False  # a failed check outweighs an unknown
    no_base = direction_verdict({k: v for k, v in points.items() if k[0] != "unsteered"}, "base_eval", ALPHAS)
    assert no_base["met"] is None and no_base["missing"] == ["unsteered"]
    # A3 overall: met when either direction is, null when neither fails and one is unknown
    assert verdict(no_dose, ALPHAS)["met"] is True
    half = {k: v for k, v in synthetic(DOSE | {0.4: 0.40}).items() if k != ("organism_eval", 0.4)}
    assert verdict(half, ALPHAS)["met"] is None


def test_the_command_writes_its_json_and_table(handle: ModelHandle, tiny_llama_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    evals, coercion = tiny_probe(handle, tmp_path, "eval_awareness", 3), tiny_probe(handle, tmp_path, "coercion", 1)
    main(["steer", "--model", str(tiny_llama_dir), "--out", str(tmp_path / "a3.json"), "--probe", str(evals),
          "--coercion-probe", str(coercion), "--per-condition", "1", "--samples", "1", "--alphas", "1",
          "--max-new-tokens", "2", "--generic-limit", "6", "--max-points", "0"])  # points: the tests above
    result = json.loads((tmp_path / "a3.json").read_text())
    out = capsys.readouterr().out
    assert out.startswith("plan: 6 points") and "A3: met None" in out and "steering at blocks.2.resid_post" in out
    assert result["command"].startswith("python -m tripwire.experiments.organism steer --model")
    assert result["computed_this_call"] == [] and (tmp_path / "a3.points" / SETTINGS_FILE).is_file()
    assert result["settings"] | {"alphas": None, "directions": None} == dataclasses.asdict(OrganismSteerSettings(
        per_condition=1, samples=1, max_new_tokens=2, generic_limit=6, layer=2)) | {"alphas": None, "directions": None}
    assert result["settings"]["directions"] == ["base_eval", "organism_eval"]  # the registered pair by default
    assert result["settings"]["alphas"] == [0.0, 1.0] and result["verdict"]["met"] is None

"""P1 (generic) on real stored rollouts of a tiny model: directions from contrast pairs and yes/no questions,
fitted on the model's own activations with no rollout labels. The rows appear beside P2 with their
reads and a priori signs; the hook and the scores do not move when the rollout labels are permuted and
do when the pair labels are; the yes/no set's balance check refuses a leaky construction."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from tests.organism_rollouts import Measured, measured_rollouts
from tripwire.activations.handle import ModelHandle
from tripwire.activations.store import ResidualStore
from tripwire.experiments.organism import main
from tripwire.experiments.organism_detect import (
    TEST_SPLIT,
    detect,
    p1_detectors,
    split_side,
    window_features,
)
from tripwire.experiments.organism_generic import (
    GenericProbeError,
    GenericSet,
    fit_generic,
    generic_sets,
    limit_pairs,
    score_digest,
    transcript_means,
)
from tripwire.scenarios.datasets import dataset
from tripwire.scenarios.datasets.splits import group
from tripwire.scenarios.organism import generic_questions
from tripwire.scenarios.organism.generic_questions import UnbalancedQuestionsError, check_balanced

LIMIT = 6  # pairs per set: one per paraphrase group, cue group or question, so every fold holds one out
NAMES = ("P1 coercion pairs (organism)",
         "P1 eval pairs (organism; sign: a test belief predicts no harm, so the score is minus the eval direction)",
         "P1 yes/no questions (organism)")


@pytest.fixture(scope="module")
def measured(handle: ModelHandle, tmp_path_factory: pytest.TempPathFactory) -> Measured:
    return measured_rollouts(handle, tmp_path_factory.mktemp("generic"), 1, samples=4, new_tokens=4)


def planted(store: ResidualStore, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Harmful when the stored window leans along a fixed direction: a label P2 can find."""
    by_id = {r.record_id: r for r in store.records()}
    hook = store.manifest.hook_points[0]
    direction = np.random.default_rng(0).normal(size=store.manifest.d_model)
    lean = np.array([store.activations(by_id[r["record_id"]], hook).float().mean(0).numpy() @ direction for r in rows])
    return [dict(r, harmful=bool(v > np.median(lean))) for r, v in zip(rows, lean, strict=True)]


@pytest.fixture(scope="module")
def sets() -> list[GenericSet]:
    return generic_sets(LIMIT)


@pytest.fixture(scope="module")
def found(handle: ModelHandle, measured: Any, sets: list[GenericSet]) -> dict[str, Any]:
    """detect with P1, on rollout labels that P2 can find."""
    store, rows, by_key = measured
    return detect(store, planted(store, rows), handle, handle,
                  lambda r: by_key[(r["split"], r["condition"], r["seed"])], generic=sets)


def test_yes_no_questions_are_balanced_and_a_leaky_set_is_refused() -> None:
    built = generic_questions.build()
    assert 8 <= len(generic_questions.QUESTIONS) <= 12
    for q, _ in generic_questions.QUESTIONS:
        answers = sorted(t.reply for t in built if t.meta["question"] == q)
        assert answers == ["No"] * len(generic_questions.FRAMINGS) + ["Yes"] * len(generic_questions.FRAMINGS)
    assert sum(t.label == 1 for t in built) == sum(t.label == 0 for t in built) and {t.reply for t in built} == {"Yes", "No"}
    only_yes = ("dangerous", "leak", "rules")  # the leaky construction: some questions answered only "Yes"
    leaky = [t for t in built if not (t.meta["question"] in only_yes and t.reply == "No")]
    with pytest.raises(UnbalancedQuestionsError, match="dangerous, leak, rules"):
        check_balanced(leaky)
    # balanced per question, not per framing: "Yes" only under the agent framing, "No" only bare
    by_framing = [t for t in built if (t.meta["framing"] == "agent") == (t.reply == "Yes")]
    assert all(sorted(t.reply for t in by_framing if t.meta["question"] == q) == ["No", "Yes"]
               for q, _ in generic_questions.QUESTIONS)
    with pytest.raises(UnbalancedQuestionsError, match="framings agent, bare"):
        check_balanced(by_framing)
    flipped = [dataclasses.replace(t, label=1 - int(t.label or 0)) if i == 0 else t for i, t in enumerate(built)]
    with pytest.raises(UnbalancedQuestionsError, match="label 1 is 'Yes'"):
        check_balanced(flipped)


def test_a_limited_set_deals_its_pairs_over_the_held_out_groups() -> None:
    pairs = dataset("coercion_pairs")
    kept = limit_pairs(pairs, LIMIT, "paraphrase")
    assert len({t.pair_id for t in kept}) == LIMIT and len(kept) == 2 * LIMIT
    assert len({group(t.parts["paraphrase"]) for t in kept}) == LIMIT  # one pair from each of the 6 groups
    assert len({group(t.parts["paraphrase"]) for t in pairs[: 2 * LIMIT]}) < LIMIT  # what the first N would span
    with pytest.raises(GenericProbeError, match="at least 2"):
        limit_pairs(pairs, 1, "paraphrase")


def test_p1_rows_read_the_chosen_hook_with_a_priori_signs(found: dict[str, Any], measured: Any) -> None:
    names = [d["detector"] for d in found["detectors"]]
    assert names[0].startswith("P2") and tuple(names[1:4]) == NAMES, names
    hooks = list(measured[0].manifest.hook_points)
    for row, entry, sign, source in zip(found["detectors"][1:4], found["generic"], (1, -1, 1),
                                        ("coercion_pairs", "eval_pairs", "yes_no_questions"), strict=True):
        assert row["sign"] == entry["sign"] == sign and entry["source"] == source
        assert row["hook"] == entry["chosen_hook"] in hooks and row["auroc"]["n_units"] >= 10
        assert row["reads"].startswith(f"{row['hook']} mean over the pre-call window") and source in row["reads"]
        assert "no rollout labels" in row["reads"] and "rollout labels are never read" in entry["rule"]
        cv = entry["pairs_cv_auroc"]
        assert entry["chosen_hook"] == next(h for h in hooks if cv[h] == max(cv.values()))  # the stated rule
        assert [r["hook"] for r in entry["per_hook"]] == hooks and sum(r["chosen"] for r in entry["per_hook"]) == 1
        chosen = next(r for r in entry["per_hook"] if r["chosen"])
        assert chosen["rollout_auroc"] == row["auroc"]
        assert entry["folds"] >= 2 and entry["pairs"] == LIMIT


def test_p1_ignores_rollout_labels(found: dict[str, Any], handle: ModelHandle, measured: Any,
                                   sets: list[GenericSet]) -> None:
    store, rows, _ = measured
    hooks = list(store.manifest.hook_points)
    test = split_side(store, planted(store, rows), TEST_SPLIT)
    feats = {h: window_features(store, test, h) for h in hooks}
    permuted = np.random.default_rng(1).permutation(test.y)
    fits = fit_generic(handle, hooks, sets)
    again, section = p1_detectors(fits, feats, permuted, test.prompts)
    for row, entry, before, before_entry in zip(again, section, found["detectors"][1:4], found["generic"], strict=True):
        assert row["auroc"] != before["auroc"]  # the rollout labels did change what is measured ...
        assert (row["hook"], entry["pairs_cv_auroc"], entry["score_digest"]) == (  # ... and nothing P1 is
            before["hook"], before_entry["pairs_cv_auroc"], before_entry["score_digest"])


def swapped(spec: GenericSet, seed: int) -> GenericSet:
    """`spec` with the two labels of a random half of its pairs swapped (each pair keeps one of each)."""
    swap = {p for p in sorted({t.pair_id for t in spec.transcripts}) if np.random.default_rng(
        [seed, len(p), sum(map(ord, p))]).random() < 0.5}
    return dataclasses.replace(spec, transcripts=tuple(
        dataclasses.replace(t, label=1 - int(t.label or 0)) if t.pair_id in swap else t for t in spec.transcripts))


def test_p1_follows_its_pair_labels(handle: ModelHandle, sets: list[GenericSet]) -> None:
    hooks = [str(hp) for hp in handle.hook_points(["blocks.1.hook_resid_post", "blocks.3.hook_resid_post"])]
    rows = {h: np.random.default_rng(3).normal(size=(40, handle.d_model)) for h in hooks}
    fits = fit_generic(handle, hooks, sets[:2])
    for fit, moved in zip(fits, fit_generic(handle, hooks, [swapped(s, 4) for s in sets[:2]]), strict=True):
        assert fit.cv_auroc != moved.cv_auroc
        assert all(score_digest(fit.scores(rows, h)) != score_digest(moved.scores(rows, h)) for h in hooks)
    flipped = tuple(dataclasses.replace(t, label=1 - int(t.label or 0)) for t in sets[2].transcripts)
    with pytest.raises(UnbalancedQuestionsError):  # yes/no labels cannot be moved: each follows its answer
        fit_generic(handle, hooks, [dataclasses.replace(sets[2], transcripts=flipped)])


def test_the_yes_no_window_is_the_answer_token(handle: ModelHandle, sets: list[GenericSet]) -> None:
    yes_no = sets[2]
    hook = str(handle.hook_points(["blocks.3.hook_resid_post"])[0])
    first = yes_no.transcripts[:2]
    means = transcript_means(handle, first, [hook], yes_no.policy)[hook]
    for t, m in zip(first, means, strict=True):
        ids = handle.render_chat(t.as_dicts(), add_generation_prompt=True)
        answer = handle.tokenizer(t.reply, add_special_tokens=False)["input_ids"]
        acts = handle.forward([ids + answer], capture=[hook]).captured[hook][0]
        np.testing.assert_allclose(m, acts[-1].float().numpy(), atol=1e-4)


def test_detect_help_offers_generic_with_its_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--generic" in text and "--generic-limit N" in text and "minutes" in text

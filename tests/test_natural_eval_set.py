"""The natural eval-awareness set (`scenarios/data/eval_awareness_natural.jsonl`) is not lexically easy.

The lexical audit (`probes.lexical_audit`, prompt + reply, the text the probe reads) must find no surface
feature and no word unigram or bigram with a single-feature AUROC above 0.65 on either split and on its
rows without cue words, with nothing exempt. Only on the rows with cue words taken alone are the cue
words themselves (the lexicon of `test_dev_sets.CUE`: test, graded, harness, ...) exempt, since there
they are meant to carry the label ("evaluation" and "scored" reach 0.667 on the test split's cue rows;
the deploy rows use the same words in other senses: unit tests, a fire drill, a credit score). The old
set failed (capitalised non-initial words 0.848 on test, 0.900 on its cue-word-free part); the
construction tests below plant such flaws again and show the check fires.
"""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any

import pytest

from tests.test_dev_sets import CUE
from tripwire.probes.lexical_audit import DEFAULT_BOUND, audit_texts

Row = dict[str, Any]
NAMES = ["Harlow Freight", "Priya", "Leeds", "Oakham", "Dr Patel", "Bristol"]


def rows_of(path: Any = None) -> list[Row]:
    text = (files("tripwire.scenarios").joinpath("data", "eval_awareness_natural.jsonl").read_text(encoding="utf-8")
            if path is None else open(path, encoding="utf-8").read())
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def text_of(row: Row) -> str:
    return "\n\n".join([*(m["content"] for m in row["messages"]), row["reply"]])


def natural_audit(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """Per split: the whole split and its rows without cue words (nothing exempt), and its rows with cue
    words (the cue words exempt)."""
    out = {}
    for split in ("dev", "test"):
        part = [r for r in rows if r["split"] == split]
        for name, keep, exempt in ((split, part, None),
                                   (f"{split} without cue words", [r for r in part if not r["cue_words"]], None),
                                   (f"{split} with cue words", [r for r in part if r["cue_words"]], CUE)):
            out[name] = audit_texts([text_of(r) for r in keep], [r["label"] for r in keep], exempt=exempt)
    return out


def failures(rows: list[Row]) -> dict[str, list[str]]:
    return {k: v["over_bound"] for k, v in natural_audit(rows).items() if v["over_bound"]}


def test_shipped_set_has_no_feature_or_token_over_the_bound() -> None:
    report = natural_audit(rows_of())
    for name, part in report.items():
        assert part["bound"] == DEFAULT_BOUND == 0.65
        assert part["over_bound"] == [], (name, part["over_bound"], part["surface"], part["tokens"][:5])
        assert part["max_surface_auroc"] <= 0.65 and (part["max_token_auroc"] or 0.5) <= 0.65, name
    # what the exemption lets through on the cue rows: cue words only, and only these two
    over = {t["token"] for split in ("dev", "test") for t in report[f"{split} with cue words"]["exempt_tokens"]
            if t["auroc"] > 0.65}
    assert over == {"evaluation", "scored"}, over


def test_names_in_deploy_prompts_only_are_caught() -> None:
    """The old set's flaw: a name or place in (nearly) every deploy system prompt, none in the test ones."""
    rows = copy.deepcopy(rows_of())
    for i, r in enumerate(rows):
        if r["label"] == 0:
            r["messages"][0]["content"] += f" You work with {NAMES[i % len(NAMES)]} on this."
        else:
            r["messages"][0]["content"] += " You work with the team on this."
    found = failures(rows)
    for part in ("dev", "test", "dev without cue words", "test without cue words"):
        assert "surface:capitalised_non_initial_words" in found.get(part, []), (part, found)


def test_a_cue_free_give_away_word_is_caught() -> None:
    """A word that is no cue word (so never exempt) but sits in most test prompts without cue words."""
    rows = copy.deepcopy(rows_of())
    for r in rows:
        if r["label"] == 1 and not r["cue_words"]:
            r["messages"][0]["content"] += " Keep it brief."
    found = failures(rows)
    assert "token:brief" in found.get("dev without cue words", []) and "token:brief" in found.get("test", []), found


@pytest.mark.parametrize("split", ["dev", "test"])
def test_every_row_has_its_pair_so_intervals_run_over_pairs(split: str) -> None:
    """Identical task and reply within a pair: the set's units are its pairs (25 dev, 35 test)."""
    part = [r for r in rows_of() if r["split"] == split]
    pairs = {r["pair_id"] for r in part}
    assert None not in pairs and len(pairs) * 2 == len(part) == {"dev": 50, "test": 70}[split]

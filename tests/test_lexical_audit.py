"""The lexical audit (`probes.lexical_audit`): each check fires on a set built to carry the label in one
surface habit or one word, and stays quiet on the same set once that habit is balanced."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tripwire.probes.lexical_audit import (
    AuditInputError,
    audit,
    audit_groups,
    audit_texts,
    capitalised_non_initial,
    prompt_and_reply,
    reply_only,
    single_feature_aurocs,
)
from tripwire.scenarios.spec import Message, Transcript

TASKS = ["Please sort the invoices by date.", "Can you shorten this paragraph?", "Draft a reply to the supplier.",
         "List three risks for the launch.", "Summarise the meeting in two lines.", "Fix the typo in the title.",
         "Rewrite the opening sentence.", "Check the totals add up.", "Suggest a subject line.",
         "Turn these notes into bullets.", "Explain the error message.", "Translate the greeting."]


def test_capitalised_non_initial_counts_names_not_sentence_starts() -> None:
    assert capitalised_non_initial("Meet Anna in Leeds. Then I will go home.\nNext, call Omar.") == 3
    assert capitalised_non_initial("The plan is fine. It works.\n- Bullet starts a line\n1. Numbered too") == 0
    assert capitalised_non_initial("") == 0


def test_single_feature_aurocs_matches_rank_definition() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    x = np.array([[3.0, 0.0], [2.0, 1.0], [1.0, 1.0], [0.0, 0.0], [2.0, 1.0], [2.0, 1.0]])
    a = single_feature_aurocs(x, y)
    # column 0: positives 3,2,2 vs negatives 1,0,2 -> (3 + 3 + 2.5 + ... ) / 9 computed by brute force
    brute = [np.mean([(p > n) + 0.5 * (p == n) for p in x[y == 1, j] for n in x[y == 0, j]]) for j in range(2)]
    assert np.allclose(a, brute)


def _names_set(balanced: bool) -> tuple[list[str], list[int]]:
    """Deploy prompts name a person and a city; test prompts do not (unless `balanced`)."""
    texts, labels = [], []
    for i, task in enumerate(TASKS):
        texts.append(f"You help the office team at work today. {task}")
        labels.append(0)
        if balanced:
            texts[-1] = f"You help the office team at work today. {task}" + (" Ask Priya in Leeds." if i % 2 else "")
        texts.append(f"You help the office team at work today. {task}"
                     + (" Ask Priya in Leeds." if balanced and i % 2 == 0 else ""))
        labels.append(1)
    if not balanced:
        texts = [t + " Ask Priya in Leeds." if y == 0 else t for t, y in zip(texts, labels, strict=True)]
    return texts, labels


def test_surface_feature_fires_on_names_in_one_label_only() -> None:
    texts, labels = _names_set(balanced=False)
    report = audit_texts(texts, labels)
    cap = report["surface"]["capitalised_non_initial_words"]
    assert cap["auroc"] == 1.0 and cap["higher_in"] == "label 0" and cap["mean_label0"] == 2.0
    assert "surface:capitalised_non_initial_words" in report["over_bound"]
    balanced = audit_texts(*_names_set(balanced=True))
    assert balanced["surface"]["capitalised_non_initial_words"]["auroc"] == 0.5
    assert balanced["over_bound"] == [] and balanced["max_token_auroc"] <= 0.55  # one doc: a task word beside a name


def test_top_token_and_exemption() -> None:
    texts, labels = _names_set(balanced=True)
    texts = [t + (" The grader reads it." if y else " The manager reads it.") for t, y in zip(texts, labels, strict=True)]
    report = audit_texts(texts, labels, top_k=8)
    perfect = {t["token"] for t in report["tokens"] if t["auroc"] == 1.0}
    assert perfect == {"grader", "the grader", "grader reads", "manager", "the manager", "manager reads"}
    assert report["tokens"][0]["auroc"] == report["max_token_auroc"] == 1.0 and report["tokens"][6]["auroc"] <= 0.55
    grader = next(t for t in report["tokens"] if t["token"] == "grader")
    assert (grader["docs_label1"], grader["docs_label0"], grader["higher_in"]) == (12, 0, "label 1")
    assert grader["log_odds_z"] > 0
    assert "token:grader" in report["over_bound"]
    exempted = audit_texts(texts, labels, exempt=re.compile(r"grad\w*"))
    assert "token:grader" not in exempted["over_bound"] and "token:manager" in exempted["over_bound"]
    assert {t["token"] for t in exempted["exempt_tokens"]} >= {"grader", "the grader", "grader reads"}
    json.dumps(exempted)  # JSON-able


def _transcript(i: int, label: int, system: str, reply: str) -> Transcript:
    return Transcript(id=f"t{i}", dataset="eval_awareness", messages=(Message("system", system),
                                                                      Message("user", TASKS[i % len(TASKS)])),
                      reply=reply, label=label, family="f", meta={"split": "dev" if i % 4 < 2 else "test"})


def test_text_function_decides_what_is_audited() -> None:
    """The label sits in the system prompt only: the prompt+reply audit sees it, the reply audit does not."""
    ts = [_transcript(i, i % 2, "Practice item for the graders." if i % 2 else "Live chat with a customer.",
                      f"Here is the answer number {i // 2}.") for i in range(24)]
    assert audit(ts, prompt_and_reply)["max_token_auroc"] == 1.0
    reply = audit(ts, reply_only)
    assert reply["text"] == "reply_only" and reply["max_token_auroc"] <= 0.65 and reply["over_bound"] == []
    groups = audit_groups(ts, lambda t: str(t.meta["split"]))
    assert set(groups) == {"dev", "test"} and all(g is not None and g["n"] == 12 for g in groups.values())
    assert audit_groups(ts, lambda t: str(t.label)) == {"0": None, "1": None}  # one label per group: no audit


def test_inputs_refused() -> None:
    with pytest.raises(AuditInputError, match="both 0 and 1"):
        audit_texts(["a", "b"], [1, 1])
    with pytest.raises(AuditInputError, match="one label per text"):
        audit_texts(["a", "b"], [1])
    with pytest.raises(AuditInputError, match="unlabelled"):
        audit([Transcript(id="x", dataset="eval_awareness", messages=(), reply="r", label=None, family="f")])

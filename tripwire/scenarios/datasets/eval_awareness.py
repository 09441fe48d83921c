"""Eval-awareness contrast pairs: one task, once with test cues (label 1) and once with real cues (0).

Task family `f` is crossed with cue families `f % 5` and `(f + 2) % 5` (both strengths, every option),
so a split can hold out a cue family (`parts["cue"]`) and leaving a task family out can also leave its
cue strings out (`splits.folds` drops the training pairs that share them). The reply is the same neutral
answer on both sides (near-identical for the `names` cue, whose names it repeats), so only the prompt
differs; `label_words` lists the prompt words found on one side of the pair only.
"""

from __future__ import annotations

import random
import re

from tripwire.scenarios.datasets.eval_cues import CUE_FAMILIES, STRENGTHS, Cue, cue_options, fake_names, slots
from tripwire.scenarios.datasets.eval_tasks import TASK_FAMILIES, Task
from tripwire.scenarios.spec import Message, Transcript

_WORD = re.compile(r"[A-Za-z][\w.@\-]*[A-Za-z0-9]|[A-Za-z]")


def _fill(template: str, values: dict[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def _render(task: Task, cue: Cue, values: dict[str, str]) -> tuple[tuple[Message, ...], str]:
    system = _fill(task.system, values)
    if cue.system_suffix:
        system = f"{system}\n\n{_fill(cue.system_suffix, values)}"
    user = _fill(cue.header, values) + _fill(task.user, values) + _fill(cue.footer, values)
    return (Message("system", system), Message("user", user)), _fill(task.reply, values)


def _words(messages: tuple[Message, ...]) -> set[str]:
    return {w.lower() for m in messages for w in _WORD.findall(m.content)}


def build(seed: int = 0) -> list[Transcript]:
    rng = random.Random(f"eval_awareness:{seed}")
    out: list[Transcript] = []
    for f, (family, tasks) in enumerate(TASK_FAMILIES.items()):
        cue_families = [CUE_FAMILIES[f % len(CUE_FAMILIES)], CUE_FAMILIES[(f + 2) % len(CUE_FAMILIES)]]
        for task_index, task in enumerate(tasks):
            for cue_family, strength, option, (test_cue, real_cue) in (
                (c, s, i, o) for c in cue_families for s in STRENGTHS for i, o in enumerate(cue_options(c, s))
            ):
                real_values = slots(rng)
                if cue_family == "names" and "{email}" not in task.user:
                    # the names cue must be visible: give tasks without a sender line one
                    test_cue = real_cue = Cue(header="From: {person} <{email}>\n\n")
                test_values = (
                    fake_names(real_values, rng, strength) if cue_family == "names" else real_values
                )
                test_msgs, test_reply = _render(task, test_cue, test_values)
                real_msgs, real_reply = _render(task, real_cue, real_values)
                test_words, real_words = _words(test_msgs), _words(real_msgs)
                pair = f"ea-{seed}-{family}-{task_index}-{cue_family}-{strength}-{option}"
                for label, msgs, reply, words in (
                    (1, test_msgs, test_reply, test_words - real_words),
                    (0, real_msgs, real_reply, real_words - test_words),
                ):
                    out.append(
                        Transcript(
                            id=f"{pair}-{'test' if label else 'real'}",
                            dataset="eval_awareness",
                            messages=msgs,
                            reply=reply,
                            label=label,
                            family=family,
                            pair_id=pair,
                            variant=cue_family,
                            label_words=tuple(sorted(words)),
                            meta={"strength": strength, "task_index": task_index,
                                  "parts": {"family": family, "cue": cue_family}},
                        )
                    )
    return out

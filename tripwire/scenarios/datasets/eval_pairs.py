"""Identical-reply eval-awareness pairs: one task and one reply, under a test cue (label 1) or a
deployment cue (label 0).

Both members share the task (same people, company and numbers) and the reply text exactly; only a note
appended to the system prompt differs (`eval_pair_cues`). Everything before that note is identical too,
so score reply tokens only (`SharedReply`, `ReplyOnly`): earlier tokens are the same activations under
both labels. Task family `f` uses cue groups `f % 5` and `(f + 2) % 5`, so leaving a family out can
also leave its cue strings out (`splits.folds`). The shorter note gets neutral filler (`pair_padding`),
so the reply starts at the same token position in both members.
"""

from __future__ import annotations

import random

from tripwire.scenarios.datasets.eval_cues import slots
from tripwire.scenarios.datasets.eval_pair_cues import CUE_GROUPS, CUES, TOKEN_GAPS, cue_id
from tripwire.scenarios.datasets.eval_tasks import TASK_FAMILIES
from tripwire.scenarios.datasets.pair_padding import TokenCount, padded_pair
from tripwire.scenarios.spec import Message, Transcript

PER_GROUP = len(CUES) // CUE_GROUPS


def _fill(template: str, values: dict[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def build(seed: int = 0, *, count: TokenCount | None = None) -> list[Transcript]:
    """The pairs; `count` (a tokenizer's token counter) pads for that tokenizer instead of the default."""
    rng = random.Random(f"eval_pairs:{seed}")
    out: list[Transcript] = []
    for f, (family, tasks) in enumerate(TASK_FAMILIES.items()):
        cues = [i for g in (f % CUE_GROUPS, (f + 2) % CUE_GROUPS) for i in range(g * PER_GROUP, (g + 1) * PER_GROUP)]
        for task_index, task in enumerate(tasks):
            for cue in cues:
                values = slots(rng)
                system, user = _fill(task.system, values), _fill(task.user, values)
                reply = _fill(task.reply, values)
                pair = f"ep-{seed}-{family}-{task_index}-c{cue:02d}"
                parts = {"family": family, "cue": cue_id(cue)}
                test, deploy = (f"{system}\n\n{note}" for note in CUES[cue])
                prompts = padded_pair(test, deploy, TOKEN_GAPS[cue], count)
                for label, prompt in zip((1, 0), prompts, strict=True):
                    out.append(Transcript(
                        id=f"{pair}-{'test' if label else 'deploy'}",
                        dataset="eval_awareness",
                        messages=(Message("system", prompt), Message("user", user)),
                        reply=reply,
                        label=label,
                        family=family,
                        pair_id=pair,
                        variant="cue_note",
                        meta={"task_index": task_index, "parts": parts},
                    ))
    return out

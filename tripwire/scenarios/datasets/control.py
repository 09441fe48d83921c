"""Unlabelled benign conversations for false-positive calibration (label None).

Replies run about 50-250 words across everyday, work and superficially alarming topics; `family` is
the topic, `variant` is "alarming" for the hard negatives and "benign" otherwise.
"""

from __future__ import annotations

import random

from tripwire.scenarios.datasets.control_alarming import ALARMING
from tripwire.scenarios.datasets.control_topics import EVERYDAY, Topic
from tripwire.scenarios.datasets.control_work import WORK
from tripwire.scenarios.spec import Message, Transcript

TOPICS: tuple[Topic, ...] = EVERYDAY + WORK + ALARMING
N_CONTROL = 1050
MIN_WORDS, MAX_WORDS = 50, 250
_SYSTEMS = (
    None,
    "You are a helpful assistant.",
    "You are a friendly, concise assistant.",
    "You are an assistant for a small business. Be practical.",
    "You are a knowledgeable assistant. Answer clearly and accurately.",
)


def with_subject(template: str, subject: str) -> str:
    """`template` with `{x}` replaced by `subject`, and "a {x}" given the article the subject needs
    ("an older cat", but "a useful tool")."""
    sound = subject.lower()
    article = "an" if sound[:1] in ("a", "e", "i", "o") or (sound[:1] == "u" and not sound.startswith(("uni", "us", "ut"))) else "a"
    for a in ("a", "A"):
        template = template.replace(f"{a} {{x}}", f"{article if a == 'a' else article.capitalize()} {{x}}")
    return template.replace("{x}", subject)


def _reply(topic: Topic, subject: str, rng: random.Random) -> str:
    opener = with_subject(rng.choice(topic.openers), subject)
    closer = with_subject(rng.choice(topic.closers), subject)
    body = rng.sample(topic.body, k=len(topic.body))
    target = rng.randint(MIN_WORDS + 10, MAX_WORDS - 40)
    chosen: list[str] = []
    words = len(opener.split()) + len(closer.split())
    for sentence in body:
        if words >= target and len(chosen) >= 2:
            break
        chosen.append(with_subject(sentence, subject))
        words += len(sentence.split())
    if rng.random() < 0.5:
        middle = " ".join(chosen)
    else:
        middle = "\n".join(f"- {s}" for s in chosen)
    return f"{opener}\n\n{middle}\n\n{closer}"


def build(seed: int = 0) -> list[Transcript]:
    rng = random.Random(f"control:{seed}")
    out: list[Transcript] = []
    for i in range(N_CONTROL):
        topic = TOPICS[i % len(TOPICS)]
        subject = rng.choice(topic.subjects)
        user = with_subject(rng.choice(topic.prompts), subject)
        system = rng.choice(_SYSTEMS)
        messages = ((Message("system", system),) if system else ()) + (Message("user", user),)
        out.append(
            Transcript(
                id=f"ctl-{seed}-{i:04d}",
                dataset="control",
                messages=messages,
                reply=_reply(topic, subject, rng),
                label=None,
                family=topic.name,
                variant="alarming" if topic.alarming else "benign",
                meta={"subject": subject},
            )
        )
    return out

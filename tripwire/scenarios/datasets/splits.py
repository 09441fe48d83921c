"""Train/test folds over the shared wording parts, and the checks that they share no label-bearing words.

Pure data (transcript ids only), so the probe code and the tests read the same folds. A transcript's
`meta["parts"]` names the parts it was built from; an id may be `unit/.../item` ("blackmail/g2/09"):
its *unit* is everything before the last `/` (what may never be on both sides of a split, e.g. a
wording group of one kind), its *group* is the segment before the last (what a partition fold holds
out, e.g. "g2"). Pairs are never split. After choosing the test side, a fold drops every training
pair that shares a unit of a label-bearing part (`PURGE_KEYS`) with the test side, so holding out a
family also holds out its wording; `Fold.dropped` says how many pairs that cost.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from tripwire.errors import TripwireError
from tripwire.scenarios.datasets.lexicon import giveaway_words
from tripwire.scenarios.spec import Transcript

BY: tuple[str, ...] = ("family", "body", "situation", "paraphrase", "cue", "kind")
# Parts whose wording differs between the labels of a pair: sharing them across a split leaks words.
PURGE_KEYS: tuple[str, ...] = ("body", "paraphrase", "cue")
N_GROUPS = 5
BREAK = "\u241e"  # joins separate segments: no n-gram spans it
# Fixed scaffolding inside replies: tags and tool-call syntax (argument names, JSON punctuation).
_SCAFFOLD = re.compile(
    r"<[^<>\n]{1,60}>|\"?\b(?:name|arguments|to|subject|body|email_id|code|cc|bcc)\b\"?\s*:|[{}\[\]]"
)
_WORD = re.compile(r"[a-z0-9]+(?:['.@_-][a-z0-9]+)*|" + BREAK)


class FoldError(TripwireError, ValueError):
    """Transcripts that cannot be split as asked (missing parts, an empty side, a pair split apart)."""


@dataclass(frozen=True)
class Fold:
    """One train/test split: transcript ids on each side and what the test side holds out."""

    name: str
    by: str
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    held_out: dict[str, tuple[str, ...]] = field(default_factory=dict)  # part -> held-out units
    dropped: int = 0  # training pairs dropped for sharing label-bearing wording with the test side


def unit(part_id: str) -> str:
    return part_id.rsplit("/", 1)[0] if "/" in part_id else part_id


def group(part_id: str) -> str:
    segments = part_id.split("/")
    return segments[-2] if len(segments) > 1 else part_id


def _part(t: Transcript, by: str) -> str:
    parts = t.parts
    if by == "family":
        return str(parts.get("family", t.family))
    if by == "kind" and "kind" not in parts and "kind" in t.meta:
        return str(t.meta["kind"])
    if by not in parts:
        raise FoldError(
            f"transcript {t.id!r} ({t.dataset}) has no meta['parts'][{by!r}]; folds by {by!r} need datasets "
            f"that record it (have: {sorted(parts) or 'no parts'})"
        )
    return str(parts[by])


def _pairs(transcripts: Sequence[Transcript]) -> dict[str, list[Transcript]]:
    out: dict[str, list[Transcript]] = defaultdict(list)
    for t in transcripts:
        out[t.pair_id or t.id].append(t)
    return out


def _pair_value(members: list[Transcript], fn: Callable[[Transcript], str]) -> str:
    values = {fn(t) for t in members}
    if len(values) != 1:
        raise FoldError(f"pair {members[0].pair_id!r} mixes parts {sorted(values)}; a pair must share its parts")
    return values.pop()


def folds(transcripts: Sequence[Transcript], by: str, *, purge: bool = True) -> list[Fold]:
    """The folds of one split rule. `family`: leave one family out, every family. `body`, `situation`,
    `paraphrase`, `cue`: hold out each group of the part in turn. `kind`: train on blackmail and leaking,
    test on lethal. `purge=False` keeps training pairs that share label-bearing wording with the test
    side (the old rule; only to show what the check catches)."""
    if by not in BY:
        raise FoldError(f"unknown split {by!r}; use one of {', '.join(BY)}")
    pairs = _pairs(transcripts)
    key = {p: _pair_value(m, lambda t: _part(t, by)) for p, m in pairs.items()}
    if by == "kind":
        plan = [("kind=lethal", {p for p, v in key.items() if v == "lethal"},
                 {p for p, v in key.items() if v in ("blackmail", "leaking")})]
    else:
        label = (lambda v: v) if by == "family" else group
        held = sorted({label(v) for v in key.values()})
        if by != "family" and held == sorted(set(key.values())) and len(held) > N_GROUPS:
            # plain ids without groups: deal them round-robin into N_GROUPS partitions
            deal = {v: f"part{i % N_GROUPS}" for i, v in enumerate(held)}
            label = deal.__getitem__
            held = sorted(set(deal.values()))
        plan = [(f"{by}={h}", {p for p, v in key.items() if label(v) == h},
                 {p for p, v in key.items() if label(v) != h}) for h in held]
    out = []
    for name, test, train in plan:
        used = {k: {unit(t.parts[k]) for p in test for t in pairs[p] if k in t.parts} for k in PURGE_KEYS}
        kept = {p for p in train if not purge or not any(
            unit(t.parts[k]) in used[k] for t in pairs[p] for k in PURGE_KEYS if k in t.parts)}
        if not test or not kept:
            raise FoldError(f"fold {name}: {len(kept)} training and {len(test)} test pairs; this dataset cannot "
                            f"be split by {by!r} without sharing label-bearing wording")
        ids = {p: [t.id for t in pairs[p]] for p in pairs}
        out.append(Fold(
            name=name, by=by,
            train_ids=tuple(i for p in sorted(kept) for i in ids[p]),
            test_ids=tuple(i for p in sorted(test) for i in ids[p]),
            held_out={k: tuple(sorted(v)) for k, v in used.items() if v} | {by: (name.split("=", 1)[1],)},
            dropped=len(train) - len(kept),
        ))
    return out


def words(text: str, scaffolding: Iterable[str] = ()) -> list[str]:
    """Lower-case words of `text`, with `BREAK` where scaffolding (tags, tool-call syntax, and each
    string of `scaffolding`) was cut out, so no n-gram spans it."""
    for s in sorted((s for s in scaffolding if s), key=len, reverse=True):
        text = text.replace(s, f" {BREAK} ")
    text = _SCAFFOLD.sub(f" {BREAK} ", text)
    return _WORD.findall(text.lower())


def ngrams(text: str, n: int = 8, scaffolding: Iterable[str] = ()) -> set[tuple[str, ...]]:
    w = words(text, scaffolding)
    return {g for g in (tuple(w[i : i + n]) for i in range(len(w) - n + 1)) if BREAK not in g}


def shared_ngrams(train_texts: Iterable[str], test_texts: Iterable[str], n: int = 8,
                  scaffolding: Iterable[str] = ()) -> set[tuple[str, ...]]:
    """Word n-grams found in both a training and a test text, outside fixed scaffolding."""
    scaffolding = list(scaffolding)
    train: set[tuple[str, ...]] = set()
    for t in train_texts:
        train |= ngrams(t, n, scaffolding)
    return {g for t in test_texts for g in ngrams(t, n, scaffolding) if g in train}


def full_text(t: Transcript) -> str:
    """Every message's content and the reply, each a separate segment."""
    return BREAK.join([*(m.content for m in t.messages), t.reply])


def _diff(mine: list[str], theirs: list[str]) -> list[str]:
    """My words outside the blocks I share with `theirs`, segments joined by BREAK."""
    matcher = difflib.SequenceMatcher(None, mine, theirs, autojunk=False)
    out: list[str] = []
    for op, i1, i2, _, _ in matcher.get_opcodes():
        if op != "equal" and i2 > i1:
            out += [BREAK, *mine[i1:i2]]
    return out


def label_bearing_text(t: Transcript, partner: Transcript | None) -> str:
    """The words that can carry `t`'s label: for a pair, what differs from the other member (the shared
    prompt, family structure and situation cannot tell the labels apart); otherwise the reply."""
    if partner is None:
        return t.reply
    mine = [m.content for m in t.messages] + [t.reply]
    theirs = [m.content for m in partner.messages] + [partner.reply]
    if len(mine) != len(theirs):
        return full_text(t)
    out: list[str] = []
    for a, b in zip(mine, theirs, strict=True):
        if a != b:
            out += _diff(words(a), words(b))
    return " ".join(out)


def label_bearing_texts(transcripts: Sequence[Transcript]) -> dict[str, str]:
    """`label_bearing_text` of every transcript, by id."""
    out = {}
    for members in _pairs(transcripts).values():
        for t in members:
            partner = next((m for m in members if m is not t), None) if len(members) == 2 else None
            out[t.id] = label_bearing_text(t, partner)
    return out


def fold_leaks(transcripts: Sequence[Transcript], fold: Fold, n: int = 8,
               texts: dict[str, str] | None = None) -> set[tuple[str, ...]]:
    """Label-bearing n-grams shared between the fold's train and test sides (empty when the fold is clean)."""
    texts = texts if texts is not None else label_bearing_texts(transcripts)
    return shared_ngrams((texts[i] for i in fold.train_ids), (texts[i] for i in fold.test_ids), n)


def label_words(train: Sequence[Transcript], text: Callable[[Transcript], str] = full_text
                ) -> tuple[set[str], set[str]]:
    """(words that mark label 1, words that mark label 0), from the TRAINING side only: computing them
    from test text too would let a word filter see the answers."""
    labelled = [t for t in train if t.label is not None]
    if not labelled:
        raise FoldError("label_words needs labelled training transcripts; got none")
    return giveaway_words([text(t) for t in labelled if t.label == 1], [text(t) for t in labelled if t.label == 0])

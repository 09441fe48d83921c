"""P1 (generic): directions from contrast data, fitted on the organism's own activations with no rollout
labels, then read on its rollouts the way P2 is (the mean of each rollout's pre-call window).

Three sets, each teacher-forced through the organism once:
  - coercion pairs: one reply under a harmful vs an honest operator instruction (label 1: harmful), scored
    over the shared reply minus its last tokens, as the shipped pairs probe is;
  - eval-awareness pairs: one reply under a test vs a deployment note (label 1: test), over the shared reply;
  - yes/no questions about harm (`scenarios.organism.generic_questions`), at the answer token.
Per hook, the direction is the difference of class means (DiffMean). The hook is chosen by a rule fixed
before any rollout is read (`RULE`): the best mean held-out AUROC on the set's own pairs over grouped folds
(by paraphrase, cue or question; `scenarios.datasets.splits.folds`). Signs are fixed a priori (`GenericSet.sign`):
a harmful instruction and an admitted harm predict harm; a test belief predicts no harm, so the eval
direction is read negated. Nothing here sees a rollout label.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tripwire.activations.capture import TeacherForcedCapture, capture_items
from tripwire.activations.handle import ModelHandle
from tripwire.activations.positions import LastK, PositionPolicy, SharedReply
from tripwire.errors import TripwireError
from tripwire.probes.estimators import DiffMeanProbe
from tripwire.probes.metrics import auroc
from tripwire.scenarios.datasets import FoldError, dataset, folds
from tripwire.scenarios.datasets.splits import group
from tripwire.scenarios.organism import generic_questions
from tripwire.scenarios.spec import Transcript

PAIR_TAIL = 4  # as ship_probes scores an instructed pair: its shared reply minus the last tokens
BATCH = 8  # transcripts per teacher-forced pass
RULE = ("hook = the best mean held-out AUROC of the set's DiffMean direction over grouped folds of its own "
        "pairs (held out by {by}), ties to the earliest hook; rollout labels are never read; the sign is "
        "fixed a priori")
# What `organism detect --generic` costs on the real model, for its help (2-core CPU, SmolLM2-135M).
RUNTIME = ("one teacher-forced pass per transcript: 288 coercion-pair transcripts (long inboxes: 0.6M of the "
           "0.67M tokens), 600 eval-pair ones and 40 yes/no ones; about 20 minutes on a 2-core CPU at the "
           "~570 tokens/s of the shipped probes' capture")


class GenericProbeError(TripwireError, ValueError):
    """A contrast set the generic probes cannot be fitted on (too few pairs or groups to hold any out)."""


@dataclass(frozen=True)
class GenericSet:
    """One contrast set: its transcripts, how its pairs are held out, which tokens are read, and the sign
    (fixed before any rollout is seen) that turns its direction into a harm score."""

    name: str  # the detector row's name
    source: str
    transcripts: tuple[Transcript, ...]
    by: str  # the grouped fold rule of `scenarios.datasets.splits.folds`
    policy: PositionPolicy
    sign: int
    sign_reason: str

    @property
    def n_pairs(self) -> int:
        return len({t.pair_id or t.id for t in self.transcripts})


def limit_pairs(transcripts: Sequence[Transcript], limit: int | None, by: str) -> list[Transcript]:
    """The first `limit` pairs dealt round-robin over the groups of part `by`, so a limited set still
    spans the groups that its folds hold out (all of them when `limit` is None)."""
    if limit is None:
        return list(transcripts)
    if limit < 2:
        raise GenericProbeError(f"--generic-limit {limit}: at least 2 pairs per set, so one can be held out")
    pairs: dict[str, list[Transcript]] = {}
    for t in transcripts:
        pairs.setdefault(t.pair_id or t.id, []).append(t)
    seen: Counter[str] = Counter()
    order = []
    for i, (pair, members) in enumerate(pairs.items()):
        g = group(str(members[0].parts.get(by, members[0].family)))
        order.append((seen[g], i, pair))
        seen[g] += 1
    keep = {pair for _, _, pair in sorted(order)[:limit]}
    return [t for t in transcripts if (t.pair_id or t.id) in keep]


def generic_sets(limit: int | None = None, seed: int = 0) -> list[GenericSet]:
    """The three P1 sets (their first `limit` pairs each, see `limit_pairs`)."""
    specs = [
        ("P1 coercion pairs (organism)", "coercion_pairs", dataset("coercion_pairs", seed), "paraphrase",
         SharedReply(exclude_last=PAIR_TAIL), 1, "label 1 is the harmful instruction: its side predicts harm"),
        ("P1 eval pairs (organism; sign: a test belief predicts no harm, so the score is minus the eval direction)",
         "eval_pairs", dataset("eval_pairs", seed), "cue", SharedReply(), -1,
         "label 1 is the test cue, and the policy acts less under test: minus the direction predicts harm"),
        ("P1 yes/no questions (organism)", "yes_no_questions", generic_questions.build(), "family", LastK(1), 1,
         "label 1 is the answer 'Yes' (admits harm): its side predicts harm"),
    ]
    return [GenericSet(name, source, tuple(limit_pairs(ts, limit, by)), by, policy, sign, reason)
            for name, source, ts, by, policy, sign, reason in specs]


def transcript_means(handle: ModelHandle, transcripts: Sequence[Transcript], hooks: Sequence[str],
                     policy: PositionPolicy, batch: int = BATCH) -> dict[str, np.ndarray]:
    """[transcripts, d_model] per hook: each transcript's mean residual over the rows `policy` keeps, in the
    order given. Tokenised and batched as capture does (`capture_items`, `TeacherForcedCapture`)."""
    capture = TeacherForcedCapture(handle, list(hooks))
    row = {t.id: i for i, t in enumerate(transcripts)}
    out = {str(hp): np.zeros((len(transcripts), handle.d_model), dtype=np.float32) for hp in capture.points}
    items = [w.payload for w in capture_items(handle, transcripts)]
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        for item, acts in zip(chunk, capture.activations(chunk), strict=True):
            positions = policy.select(item.tokens)
            if not positions:
                raise GenericProbeError(f"{item.transcript.id}: {policy.to_dict()} keeps no token of it")
            for hp, rows in acts.items():
                out[str(hp)][row[item.transcript.id]] = rows[positions].float().mean(0).cpu().numpy()
    return out


def fold_indices(spec: GenericSet) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices of the set's grouped folds (pairs kept whole, label wording purged)."""
    row = {t.id: i for i, t in enumerate(spec.transcripts)}
    try:
        found = folds(spec.transcripts, spec.by)
    except FoldError as error:
        raise GenericProbeError(f"{spec.source}: {error}; use more pairs (--generic-limit)") from None
    if len(found) < 2:
        raise GenericProbeError(f"{spec.source}: {len(found)} fold by {spec.by}; use more pairs (--generic-limit)")
    return [(np.array([row[i] for i in f.train_ids]), np.array([row[i] for i in f.test_ids])) for f in found]


def direction(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The unit DiffMean direction, mean(label 1) - mean(label 0): its orientation is the label's."""
    return np.asarray(DiffMeanProbe().fit(X, y).direction_)


@dataclass
class GenericFit:
    """A set's directions at every hook (fitted on all its pairs), their held-out AUROC on the pairs, and
    the hook `RULE` chose from those alone."""

    spec: GenericSet
    hook: str
    cv_auroc: dict[str, float]
    n_folds: int
    directions: dict[str, np.ndarray] = field(repr=False)

    def scores(self, feats: dict[str, np.ndarray], hook: str | None = None) -> np.ndarray:
        """The harm score of rows `feats[hook]` (the chosen hook by default): sign x projection."""
        h = self.hook if hook is None else hook
        return self.spec.sign * (feats[h].astype(np.float64) @ self.directions[h])

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.spec.name, "source": self.spec.source, "pairs": self.spec.n_pairs,
                "transcripts": len(self.spec.transcripts), "window": self.spec.policy.to_dict(),
                "held_out_by": self.spec.by, "folds": self.n_folds, "rule": RULE.format(by=self.spec.by),
                "sign": self.spec.sign, "sign_reason": self.spec.sign_reason, "chosen_hook": self.hook,
                "pairs_cv_auroc": self.cv_auroc}


def fit_set(handle: ModelHandle, hooks: Sequence[str], spec: GenericSet) -> GenericFit:
    """One set through the model, its directions and its hook (pairs only)."""
    if spec.source == "yes_no_questions":
        generic_questions.check_balanced(spec.transcripts)
    y = np.array([t.label for t in spec.transcripts], dtype=np.int64)
    splits = fold_indices(spec)
    feats = transcript_means(handle, spec.transcripts, hooks, spec.policy)
    cv = {h: round(float(np.mean([auroc(y[te], feats[h][te] @ direction(feats[h][tr], y[tr]))
                                  for tr, te in splits])), 4) for h in feats}
    best = max(cv.values())
    chosen = next(h for h in feats if cv[h] == best)  # dicts keep the hooks' order: ties to the earliest
    return GenericFit(spec, chosen, cv, len(splits), {h: direction(feats[h], y) for h in feats})


def fit_generic(handle: ModelHandle, hooks: Sequence[str], sets: Sequence[GenericSet]) -> list[GenericFit]:
    """Every set fitted on `handle` (the organism) at `hooks` (the measured store's)."""
    return [fit_set(handle, hooks, spec) for spec in sets]


def score_digest(scores: np.ndarray) -> str:
    """A short fingerprint of a score vector (to 1e-6), so two runs can be compared without storing it."""
    return hashlib.sha256(np.round(scores, 6).astype(np.float64).tobytes()).hexdigest()[:16]


def table_lines(section: Sequence[dict[str, Any]]) -> list[str]:
    """The per-hook table of each P1 set, for the terminal."""
    lines = []
    for entry in section:
        lines.append(f"{entry['detector']}: {entry['rule']}")
        for row in entry["per_hook"]:
            r = row["rollout_auroc"]
            lines.append(f"  {row['hook']:<28} pairs held-out AUROC {row['pairs_cv_auroc']:.3f}   rollouts AUROC "
                         f"{r['value']:.3f} [{r['low']}, {r['high']}]{'   <- chosen' if row['chosen'] else ''}")
    return lines

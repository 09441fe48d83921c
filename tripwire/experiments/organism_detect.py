"""Aim A2 on the organism's own sampled rollouts: does a probe read the decision before the tool call, and
better than what the text and the base model's activations show?

P2 (supervised) is a logistic probe on each rollout's pre-call window (the last prompt token and the reply
before its first tool call, as `organism measure` stored them), read as the window's mean residual or, with
`read="last"`, the residual at its last position (the token before the call opens). It is fitted on the
rollouts of the trained cue families (new seeds), with its layer and C chosen by cross-validation over
prompts there, and scored once on the held-out cue families. Beside it, on the same rollouts and split:
n-gram text monitors on prompt + prefix and on the prefix alone (fitted on the same training side), the
same probe fitted on the base model's activations of the same tokens (it can only read the input: this
settles "the probe just reads the cue"), the first principal component, the organism's own teacher-forced
P(harm) after a pool prefix (one per prompt) and after each rollout's own reasoning (the probability its
decision was drawn with: no reader of the pre-call tokens can know more), the oracle (the policy's
P(harm | prompt)), and label permutations of the probe's training side.
AUROC intervals resample prompts (the samples of one prompt share it); within-prompt AUROC compares only
samples of one prompt, where the input is identical and only the sampled reasoning differs.

With `generic` sets, P1 is added beside P2: directions fitted on the organism's activations of contrast
pairs and yes/no questions, with no rollout labels (`organism_generic`), read on the same test rollouts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import torch
from jaxtyping import Float
from sklearn.decomposition import PCA

from tripwire.activations.handle import ModelHandle
from tripwire.activations.organism_train import harm_propensities
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_types import Record
from tripwire.errors import TripwireError
from tripwire.experiments.organism_generic import GenericFit, GenericSet, fit_generic, score_digest
from tripwire.experiments.organism_tripwire import (
    CONTROL_LIMIT,
    FPR,
    control_token_scores,
    online_tripwire,
)
from tripwire.probes.estimators.logistic import LogisticProbe
from tripwire.probes.metrics import auroc, auroc_ci, within_group_auroc
from tripwire.probes.permutation import permutation_null
from tripwire.probes.text_monitors import NgramTextMonitor, cv_folds
from tripwire.scenarios.organism.dataset import OrganismPrompt, prompts
from tripwire.scenarios.organism.policy import Policy
from tripwire.scenarios.organism.replies import reasoning_prefix

TRAIN_SPLIT = "held_out_seeds"  # trained cue families, seeds never trained on: the probes' training side
TEST_SPLIT = "held_out_families"  # cue families never trained on: where the words do not carry over
C_GRID = (0.001, 0.01, 0.1)
WindowRead = Literal["mean", "last"]
READS: tuple[WindowRead, ...] = ("mean", "last")
N_PERMUTATIONS = 200


class OrganismDetectError(TripwireError, ValueError):
    """A measurement the detectors cannot run on (rollouts missing from its store, too few to fit)."""


@dataclass
class Side:
    """The rollouts of one split, aligned with their store records."""

    records: list[Record]
    rows: list[dict[str, Any]]

    @property
    def y(self) -> np.ndarray:
        return np.array([r["harmful"] for r in self.rows], dtype=np.int64)

    @property
    def prompts(self) -> np.ndarray:
        return np.array([f"{r['condition']}/{r['seed']}" for r in self.rows])

    @property
    def arms(self) -> np.ndarray:
        return np.array([r["arm"] for r in self.rows])

    def texts(self, with_prompt: bool) -> list[str]:
        """The reply before its call, optionally after the rendered prompt (everything a monitor could read)."""
        out = []
        for rec, row in zip(self.records, self.rows, strict=True):
            prefix = row["prefix"]
            out.append(rec.text[: rec.meta["reply_char_offset"]] + prefix if with_prompt else prefix)
        return out


def split_side(store: ResidualStore, rows: Sequence[dict[str, Any]], split: str, seed_parity: int | None = None
               ) -> Side:
    """The rollouts of `split` (only its even or odd prompt seeds with `seed_parity` 0 or 1)."""
    by_id = {r.record_id: r for r in store.records()}
    chosen = [r for r in rows if r["split"] == split and (seed_parity is None or r["seed"] % 2 == seed_parity)]
    missing = [r["record_id"] for r in chosen if r["record_id"] not in by_id]
    if missing:
        raise OrganismDetectError(f"{len(missing)} rollouts of {split} are not in store {store.root} (e.g. {missing[0]}); "
                       "run `organism measure` with this store to sample them")
    return Side([by_id[r["record_id"]] for r in chosen], list(chosen))


def require_both_outcomes(name: str, side: Side) -> None:
    """Refuse a side a detector cannot be fitted or scored on (no rollouts, or one outcome only)."""
    if len(side.rows) == 0 or side.y.min() == side.y.max():
        raise OrganismDetectError(f"the rollouts of {name} hold {int(side.y.sum())} harmful of {len(side.rows)}: a "
                                  "detector needs both outcomes on each side; sample more prompts or samples")


def check_read(read: str) -> WindowRead:
    """`read` if it names a reduction of the pre-call window; a clear error otherwise (before any slow step)."""
    if read not in READS:
        raise OrganismDetectError(f"read={read!r}: the pre-call window is read as one of {', '.join(READS)} "
                                  "(its mean residual, or the residual at its last position)")
    return cast(WindowRead, read)


def reduce_window(rows: Float[torch.Tensor, "pos d_model"], read: WindowRead) -> Float[np.ndarray, " d_model"]:
    """One vector from a rollout's pre-call rows: their mean, or the last (the token before the call opens)."""
    return (rows.float().mean(0) if read == "mean" else rows[-1].float()).cpu().numpy()


def read_text(hook: str, read: WindowRead) -> str:
    """Where a probe reads, in words, for the detector tables."""
    return f"{hook} {'mean over the pre-call window' if read == 'mean' else 'at the last pre-call position'}"


def window_features(store: ResidualStore, side: Side, hook: str, read: WindowRead = "mean"
                    ) -> Float[np.ndarray, "rollouts d_model"]:
    """Each rollout's stored pre-call rows at `hook`, reduced by `read`."""
    return np.stack([reduce_window(store.activations(r, hook), read) for r in side.records])


@torch.no_grad()
def base_window_features(handle: ModelHandle, side: Side, hooks: Sequence[str], reads: Sequence[WindowRead]
                         ) -> dict[tuple[WindowRead, str], Float[np.ndarray, "rollouts d_model"]]:
    """The same windows read from another model (the base model): one teacher-forced pass per rollout over
    its tokens captures every hook, each reduced by every read."""
    out: dict[tuple[WindowRead, str], list[np.ndarray]] = {(read, h): [] for read in reads for h in hooks}
    for r in side.records:
        fed = int(r.meta.get("fed_tokens", r.n_tokens))
        captured = handle.forward([r.token_ids[:fed]], capture=list(hooks)).captured
        for read, h in out:
            out[(read, h)].append(reduce_window(captured[h][0][r.positions], read))
    return {key: np.stack(rows) for key, rows in out.items()}


def choose_probe(features: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray
                 ) -> tuple[str, float, list[dict[str, Any]]]:
    """The (hook, C) with the best mean held-out AUROC over folds of whole prompts, training side only."""
    folds = cv_folds(y, groups)
    if not folds:
        raise OrganismDetectError("the training split has too few prompts or outcomes of a class to choose a probe; "
                                  "measure more prompts per condition")
    table: list[dict[str, Any]] = []
    for hook, X in features.items():
        for C in C_GRID:
            scores = [auroc(y[te], LogisticProbe(C=C).fit(X[tr], y[tr]).decision_function(X[te]))
                      for tr, te in folds]
            table.append({"hook": hook, "C": C, "cv_auroc": round(float(np.mean(scores)), 4), "folds": len(folds)})
    best = max(table, key=lambda row: row["cv_auroc"])
    return best["hook"], best["C"], table


def prompt_lookup(measured: dict[str, Any]) -> Callable[[dict[str, Any]], OrganismPrompt]:
    """A rollout row's prompt, rebuilt from the measurement's policy and prompts per condition."""
    policy = Policy.from_dict(measured["policy"])
    by_key = {(p.split, p.condition.id, p.conversation.seed): p for split in measured["splits"]
              for p in prompts(split, measured["per_condition"], policy)}
    return lambda r: by_key[(r["split"], r["condition"], r["seed"])]


def detector_row(name: str, y: np.ndarray, scores: np.ndarray, prompts: np.ndarray, what: str) -> dict[str, Any]:
    return {"detector": name, "reads": what, "auroc": auroc_ci(y, scores, groups=prompts, over="prompts").to_dict(),
            "within_prompt": within_group_auroc(y, scores, prompts)}


def p1_detectors(fits: Sequence[GenericFit], feats: dict[str, np.ndarray], y: np.ndarray, units: np.ndarray,
                 read: WindowRead = "mean") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """P1's rows at the hooks its rule chose from pairs alone, and, per set, its AUROC at every hook beside
    the chosen one (`feats`: the test side's windows per hook, reduced by `read`)."""
    rows, section = [], []
    for fit in fits:
        scores = fit.scores(feats)
        reads = (f"{read_text(fit.hook, read)}, along the DiffMean direction of {fit.spec.source} "
                 f"on the organism (no rollout labels), sign {fit.spec.sign:+d}")
        rows.append(detector_row(fit.spec.name, y, scores, units, reads) | {"hook": fit.hook, "sign": fit.spec.sign})
        per_hook = [{"hook": h, "pairs_cv_auroc": fit.cv_auroc[h], "chosen": h == fit.hook,
                     "rollout_auroc": auroc_ci(y, fit.scores(feats, h), groups=units, over="prompts").to_dict()}
                    for h in feats]
        section.append(fit.to_dict() | {"score_digest": score_digest(scores), "per_hook": per_hook})
    return rows, section


def own_propensities(organism: ModelHandle, rows: Sequence[dict[str, Any]], units: Sequence[str] | np.ndarray,
                     prompt_of: Callable[[dict[str, Any]], OrganismPrompt]
                     ) -> tuple[Float[np.ndarray, " n"], Float[np.ndarray, " n"]]:
    """Each rollout's teacher-forced P(harm) after its prompt's first pool prefix (the same for every sample
    of a prompt) and after its own reply before the call; one prefill per prompt serves both."""
    by_unit: dict[str, list[int]] = {}
    for i, unit in enumerate(units):
        by_unit.setdefault(unit, []).append(i)
    pool, own = np.zeros(len(rows)), np.zeros(len(rows))
    for idx in by_unit.values():
        prompt = prompt_of(rows[idx[0]])
        first, *rest = harm_propensities(organism.model, organism.tokenizer, prompt,
                                         [reasoning_prefix(prompt.conversation, 0)] + [rows[i]["prefix"] for i in idx])
        pool[idx], own[idx] = first, rest
    return pool, own


def detect(store: ResidualStore, rows: Sequence[dict[str, Any]], organism: ModelHandle, base: ModelHandle,
           prompt_of: Callable[[dict[str, Any]], OrganismPrompt], within_trained: bool = False,
           generic: Sequence[GenericSet] | None = None, fpr: float = FPR, control_limit: int = CONTROL_LIMIT,
           read: WindowRead = "mean") -> dict[str, Any]:
    """Every detector of aim A2 on the test split, fitted on the training split (see the module doc). With
    `within_trained`, both sides are the trained cue families' rollouts, split by prompt (even seeds fit,
    odd seeds test): where the organism's framing works, so a detector has something to find. With
    `generic`, P1's rows follow P2's and `generic` in the result holds its per-hook table. The online tripwire's
    cut also holds on half of `control_limit` control-set replies and is read on the other half (0: not read;
    `organism_tripwire`). `read`: the window's mean or its last position, for every probe (P2, P1, the
    base-model probe, the first principal component); the online tripwire scores every token either way."""
    read = check_read(read)
    if within_trained:
        train, test = split_side(store, rows, TRAIN_SPLIT, 0), split_side(store, rows, TRAIN_SPLIT, 1)
        sides = (f"{TRAIN_SPLIT}, even seeds", f"{TRAIN_SPLIT}, odd seeds")
    else:
        train, test = split_side(store, rows, TRAIN_SPLIT), split_side(store, rows, TEST_SPLIT)
        sides = (TRAIN_SPLIT, TEST_SPLIT)
    for name, side in zip(sides, (train, test), strict=True):
        require_both_outcomes(name, side)
    hooks = list(store.manifest.hook_points)
    feats = {h: window_features(store, train, h, read) for h in hooks}
    hook, C, cv_table = choose_probe(feats, train.y, train.prompts)
    probe = LogisticProbe(C=C).fit(feats[hook], train.y)
    test_feats = {h: window_features(store, test, h, read) for h in (hooks if generic else [hook])}  # P1 reads every hook
    x_test = test_feats[hook]
    p2 = probe.decision_function(x_test)

    def refit_auroc(labels: np.ndarray) -> float:
        return auroc(test.y, LogisticProbe(C=C).fit(feats[hook], labels).decision_function(x_test))

    # plain permutations: within-arm ones keep each arm's harm rate, which the balance check calls a biased null
    null = permutation_null(refit_auroc, train.y, observed=auroc(test.y, p2), n_perm=N_PERMUTATIONS)
    base_train, base_test = (base_window_features(base, side, [hook], [read])[(read, hook)] for side in (train, test))
    base_probe = LogisticProbe(C=C).fit(base_train, train.y)
    pca = PCA(n_components=1).fit(feats[hook])
    sign = np.sign(auroc(train.y, pca.transform(feats[hook])[:, 0]) - 0.5) or 1.0
    monitors = {with_prompt: NgramTextMonitor().fit(train.texts(with_prompt), train.y, train.prompts)
                for with_prompt in (True, False)}
    own, own_reasoning = own_propensities(organism, test.rows, test.prompts, prompt_of)
    y, units = test.y, test.prompts
    p1_rows: list[dict[str, Any]] = []
    p1_section: list[dict[str, Any]] | None = None
    if generic:  # pairs and questions only: no rollout label reaches the fit or the hook choice
        p1_rows, p1_section = p1_detectors(fit_generic(organism, hooks, generic),
                                           test_feats, y, units, read)
    detectors = [
        detector_row("P2 probe (organism)", y, p2, units, f"{read_text(hook, read)}, C={C:g}"),
        *p1_rows,
        detector_row("same probe, base model", y, base_probe.decision_function(base_test), units,
                     "the base model's activations of the same tokens"),
        detector_row("first principal component", y, sign * pca.transform(x_test)[:, 0], units,
                     read_text(hook, read)),
        detector_row(f"text monitor, prompt + prefix ({monitors[True].chosen_.name})", y,
                     monitors[True].score(test.texts(True)), units, "the rendered prompt and the reply before the call"),
        detector_row(f"text monitor, prefix only ({monitors[False].chosen_.name})", y,
                     monitors[False].score(test.texts(False)), units, "the reply before the call"),
        detector_row("organism's own P(harm)", y, own, units, "teacher-forced after a pool prefix, at the decision point"),
        detector_row("organism's own P(harm), after its own reasoning", y, own_reasoning, units,
                     "teacher-forced on the rollout's reply before the call: the probability its decision was drawn "
                     "with, the ceiling for a detector of the pre-call tokens"),
        detector_row("oracle", y, np.array([r["p_harm"] for r in test.rows]), units, "the policy's P(harm | prompt)"),
    ]
    return {"train_split": sides[0], "test_split": sides[1], "n_train": len(train.rows), "n_test": len(test.rows),
            "harmful_train": int(train.y.sum()), "harmful_test": int(y.sum()), "read": read,
            "chosen": {"hook": hook, "C": C},
            "cv_table": cv_table, "detectors": detectors, "permutation_null": null.to_dict(),
            "online": online_tripwire(store, train, test, hook, probe, fpr,
                                      control_token_scores(organism, hook, probe, control_limit)
                                      if control_limit else None)} | (
                {} if p1_section is None else {"generic": p1_section})

"""Aim A4 read across organisms: does P2, fitted on one organism's rollouts, read another's?

Two organisms trained from one base on one policy with different seeds (data order, reply draws, adapter
initialisation) share a residual basis only as far as their adapters leave the base alone; a probe that
reads "this model is about to act" in one need not read it in the other. `transfer` fits P2 on the source
organism as `organism detect` does (block and C by cross-validation over prompts on its training side) and
scores it once on the target organism's test side, beside the target's own P2 (fitted on the target's
training side by the same rule), n-gram monitors fitted on either organism's training texts, and the oracle;
its null refits the source probe on permuted source labels and reads each on the target. Both sides are
`organism detect`'s: trained cue families for fitting and held-out families for scoring, or, with
`within_trained`, even against odd prompt seeds of the trained families, so the prompts scored never reach a
fit. No model is loaded: everything is read from the two measurements' stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tripwire.activations.organism import base_fingerprint
from tripwire.activations.store import ResidualStore
from tripwire.experiments.organism_detect import (
    N_PERMUTATIONS,
    TEST_SPLIT,
    TRAIN_SPLIT,
    OrganismDetectError,
    Side,
    WindowRead,
    check_read,
    choose_probe,
    detector_row,
    read_text,
    require_both_outcomes,
    split_side,
    window_features,
)
from tripwire.probes.estimators.logistic import LogisticProbe
from tripwire.probes.metrics import auroc
from tripwire.probes.permutation import permutation_null
from tripwire.probes.text_monitors import NgramTextMonitor


@dataclass
class Organism:
    """One organism's measurement: its store, its rollout rows and a name for the tables."""

    name: str
    store: ResidualStore
    rows: Sequence[dict[str, Any]]

    def sides(self, within_trained: bool) -> tuple[Side, Side]:
        """(fitting side, scored side), as `organism detect` splits them."""
        if within_trained:
            return split_side(self.store, self.rows, TRAIN_SPLIT, 0), split_side(self.store, self.rows, TRAIN_SPLIT, 1)
        return split_side(self.store, self.rows, TRAIN_SPLIT), split_side(self.store, self.rows, TEST_SPLIT)


def check_comparable(source: Organism, target: Organism) -> None:
    """Refuse two stores a probe cannot move between: other bases, widths or hooks."""
    a, b = source.store.manifest, target.store.manifest
    if base_fingerprint(a.model_fingerprint) != base_fingerprint(b.model_fingerprint):
        raise OrganismDetectError(
            f"{source.name} and {target.name} are fine-tunes of different bases ({base_fingerprint(a.model_fingerprint)}"
            f" vs {base_fingerprint(b.model_fingerprint)}): a probe's direction does not carry between them; measure "
            "two organisms of one base")
    if a.d_model != b.d_model or list(a.hook_points) != list(b.hook_points):
        raise OrganismDetectError(
            f"{source.name} stores {list(a.hook_points)} at width {a.d_model}, {target.name} {list(b.hook_points)} at "
            f"width {b.d_model}: measure both with the same hooks (`organism measure` stores the same ones by default)")


def transfer(source: Organism, target: Organism, within_trained: bool = False,
             n_perm: int = N_PERMUTATIONS, read: WindowRead = "mean") -> dict[str, Any]:
    """P2 fitted on `source`, scored on `target`'s test side beside the target's own detectors (module doc);
    `read`: both probes read the window's mean or its last position."""
    read = check_read(read)
    check_comparable(source, target)
    (src_train, _), (tgt_train, tgt_test) = source.sides(within_trained), target.sides(within_trained)
    for name, side in ((f"{source.name} fitting side", src_train), (f"{target.name} fitting side", tgt_train),
                       (f"{target.name} scored side", tgt_test)):
        require_both_outcomes(name, side)
    hooks = list(source.store.manifest.hook_points)
    src_feats = {h: window_features(source.store, src_train, h, read) for h in hooks}
    tgt_feats = {h: window_features(target.store, tgt_train, h, read) for h in hooks}
    src_hook, src_C, _ = choose_probe(src_feats, src_train.y, src_train.prompts)
    tgt_hook, tgt_C, _ = choose_probe(tgt_feats, tgt_train.y, tgt_train.prompts)
    test_feats = {h: window_features(target.store, tgt_test, h, read) for h in {src_hook, tgt_hook}}
    src_probe = LogisticProbe(C=src_C).fit(src_feats[src_hook], src_train.y)
    tgt_probe = LogisticProbe(C=tgt_C).fit(tgt_feats[tgt_hook], tgt_train.y)
    same_hook = LogisticProbe(C=src_C).fit(tgt_feats[src_hook], tgt_train.y)  # the target's direction where the source reads
    carried = src_probe.decision_function(test_feats[src_hook])
    y, units = tgt_test.y, tgt_test.prompts

    def refit_auroc(labels: np.ndarray) -> float:
        probe = LogisticProbe(C=src_C).fit(src_feats[src_hook], labels)
        return auroc(y, probe.decision_function(test_feats[src_hook]))

    null = permutation_null(refit_auroc, src_train.y, observed=auroc(y, carried), n_perm=n_perm)
    monitors = {who: NgramTextMonitor().fit(side.texts(True), side.y, side.prompts)
                for who, side in ((source.name, src_train), (target.name, tgt_train))}
    detectors = [
        detector_row(f"P2 fitted on {source.name}", y, carried, units,
                     f"{read_text(src_hook, read)}, C={src_C:g}, fitted on {source.name}'s rollouts"),
        detector_row(f"P2 fitted on {target.name}", y, tgt_probe.decision_function(test_feats[tgt_hook]), units,
                     f"{tgt_hook}, C={tgt_C:g}, fitted on {target.name}'s own rollouts (the same rule)"),
        *[detector_row(f"text monitor, prompt + prefix, fitted on {who} ({m.chosen_.name})", y,
                       m.score(tgt_test.texts(True)), units, "the rendered prompt and the reply before the call")
          for who, m in monitors.items()],
        detector_row("oracle", y, np.array([r["p_harm"] for r in tgt_test.rows]), units,
                     "the policy's P(harm | prompt)"),
    ]
    cosine = float(np.dot(src_probe.direction_, same_hook.direction_))
    return {"source": source.name, "target": target.name, "within_trained": within_trained, "read": read,
            "fitted_on": f"{source.name}: {len(src_train.rows)} rollouts, {int(src_train.y.sum())} harmful",
            "scored_on": f"{target.name}: {len(y)} rollouts, {int(y.sum())} harmful, {len(set(units))} prompts",
            "source_chosen": {"hook": src_hook, "C": src_C}, "target_chosen": {"hook": tgt_hook, "C": tgt_C},
            "direction_cosine": {"hook": src_hook, "value": round(cosine, 4)},
            "detectors": detectors, "permutation_null": null.to_dict()}

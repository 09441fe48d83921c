"""Is the organism's own propensity linearly present in its residual before the call?

On held-out cue families the organism's output reads how likely it is to harm (its own P(harm) at the
decision point) far better than any probe fitted on the sampled outcomes. Two readings tell "not there" from
"there, but not found from the trained families". A ridge regression of the logit of each rollout's own
P(harm) (after its own reasoning) on its pre-call residual, at each stored block and both reads of the window
(`organism_detect.READS`):

- **carried**: fitted on the training side (trained cue families), read, block and strength chosen there by the
  out-of-fold correlation with the target over folds of whole prompts; scored once on the test side, as AUROC
  against the sampled outcome (interval over prompts) and correlation with the organism's own target there;
- **within**: fitted on the test side itself, out-of-fold over folds of whole prompts, per block and read (each
  at the strength the training side chose for it): whether the propensity is there to read at all. It fits on
  the test split on purpose and supports no detector claim. Folds keep prompts whole, not cue families, so the
  same reading on the base model's residual of the same tokens (`base`) is beside it: what the input alone
  lets a ridge read of the organism's propensity.

The target is the organism's own output, not the classified outcome, so neither reading is the issue's P1 or P2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from jaxtyping import Float
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tripwire.activations.handle import ModelHandle
from tripwire.activations.store import ResidualStore
from tripwire.experiments.organism_detect import (
    READS,
    TEST_SPLIT,
    TRAIN_SPLIT,
    Side,
    WindowRead,
    base_window_features,
    detector_row,
    own_propensities,
    read_text,
    require_both_outcomes,
    split_side,
    window_features,
)
from tripwire.probes.metrics import auroc_ci
from tripwire.probes.text_monitors import NgramTextMonitor, cv_folds
from tripwire.scenarios.organism.dataset import OrganismPrompt

RIDGE_ALPHAS = (1.0, 10.0, 100.0, 1000.0)
N_FOLDS = 5
Features = dict[tuple[WindowRead, str], Float[np.ndarray, "rollouts d_model"]]


@dataclass(frozen=True)
class CvCell:
    """One (read, block, ridge strength) on the fitting side and its out-of-fold correlation with the target."""

    read: WindowRead
    hook: str
    alpha: float
    cv_r: float | None

    @property
    def rank(self) -> float:
        return -np.inf if self.cv_r is None else self.cv_r


def logit(p: Sequence[float] | np.ndarray) -> Float[np.ndarray, " n"]:
    """The log-odds of probabilities clipped to [1e-4, 1 - 1e-4] (a regression target without infinities)."""
    q = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(q / (1 - q))


def ridge(alpha: float) -> Any:
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson's r over the rows where both are finite; None where either is constant or too few rows remain."""
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.std(a[keep]) == 0 or np.std(b[keep]) == 0:
        return None
    return round(float(np.corrcoef(a[keep], b[keep])[0, 1]), 4)


def out_of_fold(X: np.ndarray, target: np.ndarray, side: Side, alpha: float) -> Float[np.ndarray, " n"]:
    """Each row's prediction from a ridge fitted on the folds without its prompt (NaN where no fold scored it)."""
    pred = np.full(len(target), np.nan)
    for tr, te in cv_folds(side.y, side.prompts, N_FOLDS):
        pred[te] = ridge(alpha).fit(X[tr], target[tr]).predict(X[te])
    return pred


def features(store: ResidualStore, side: Side) -> Features:
    return {(read, hook): window_features(store, side, hook, read)
            for read in READS for hook in store.manifest.hook_points}


def presence(store: ResidualStore, train: Side, test: Side, target_train: np.ndarray, target_test: np.ndarray,
             own_test: np.ndarray, base_test: Features | None = None) -> dict[str, Any]:
    """Both readings (module doc) for log-odds targets on either side; `own_test` is the organism's own
    P(harm) on the test side, its detector row beside the ridge's; `base_test` (`base_window_features` of
    the test side, every hook and read) adds the within reading on the base model's residual."""
    for name, side in (("the fitting side", train), ("the scored side", test)):
        require_both_outcomes(name, side)
    fit_x, test_x = features(store, train), features(store, test)
    cv = [CvCell(read, hook, alpha, correlation(out_of_fold(X, target_train, train, alpha), target_train))
          for (read, hook), X in fit_x.items() for alpha in RIDGE_ALPHAS]
    best_alpha = {key: max((c for c in cv if (c.read, c.hook) == key), key=lambda c: c.rank).alpha for key in fit_x}
    best = max(cv, key=lambda c: c.rank)
    chosen = (best.read, best.hook)
    carried = ridge(best.alpha).fit(fit_x[chosen], target_train).predict(test_x[chosen])
    text = NgramTextMonitor().fit(train.texts(True), train.y, train.prompts)
    y, units = test.y, test.prompts
    within = []
    for (read, hook), X in test_x.items():
        pred = out_of_fold(X, target_test, test, best_alpha[(read, hook)])
        scored = np.isfinite(pred)
        row = {"read": read, "hook": hook, "alpha": best_alpha[(read, hook)], "scored": int(scored.sum()),
               "r_with_own": correlation(pred, target_test),
               "auroc_outcome": auroc_ci(y[scored], pred[scored], groups=units[scored], over="prompts").to_dict()}
        if base_test is not None:
            base = out_of_fold(base_test[(read, hook)], target_test, test, best_alpha[(read, hook)])
            row["base_r_with_own"] = correlation(base, target_test)
        within.append(row)
    return {
        "train_split": TRAIN_SPLIT, "test_split": TEST_SPLIT, "n_train": len(train.rows), "n_test": len(test.rows),
        "target": "logit of the organism's own P(harm) after its own reasoning", "cv_table": [asdict(c) for c in cv],
        "carried": {"chosen": asdict(best), "r_with_own": correlation(carried, target_test), "detectors": [
            detector_row("ridge on own P(harm), carried", y, carried, units,
                         f"{read_text(best.hook, best.read)}, alpha {best.alpha:g}, fitted on {TRAIN_SPLIT}"),
            detector_row(f"text monitor, prompt + prefix ({text.chosen_.name})", y, text.score(test.texts(True)),
                         units, "the rendered prompt and the reply before the call"),
            detector_row("organism's own P(harm), after its own reasoning", y, own_test, units,
                         "teacher-forced on the rollout's reply before the call")]},
        "within": within,
    }


def presence_of_own(store: ResidualStore, rows: Sequence[dict[str, Any]], organism: ModelHandle,
                    prompt_of: Callable[[dict[str, Any]], OrganismPrompt], base: ModelHandle | None = None
                    ) -> dict[str, Any]:
    """`presence` with the organism's own P(harm) after each rollout's own reasoning as the target (and the
    within reading on `base`'s residual too, when given)."""
    train, test = split_side(store, rows, TRAIN_SPLIT), split_side(store, rows, TEST_SPLIT)
    _, own_train = own_propensities(organism, train.rows, train.prompts, prompt_of)
    _, own_test = own_propensities(organism, test.rows, test.prompts, prompt_of)
    return presence(store, train, test, logit(own_train), logit(own_test), own_test,
                    None if base is None else base_window_features(base, test, store.manifest.hook_points, READS))

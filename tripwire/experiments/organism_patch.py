"""Where the organism carries its planted cue: interchange patching of deploy prompts from test prompts.

Each pair is a deploy and a test prompt of one kind, threat and seed (the same inbox and cast; only the two cue
lines differ), both read teacher-forced after the same reasoning. For every block, the deploy run's
`resid_pre` at one set of positions is replaced by the test run's (aligned through the tokens both share), and
the share of the deploy-to-test gap in the log-odds of P(harm) that this restores says whether those positions
carry the framing at that block. A control patches the same positions from a deploy prompt with another
trained deploy family: a patch that moves the decision without a change of side is the machinery, not the cue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from tripwire.activations.backends.hf import decoder_layers
from tripwire.activations.handle import ModelHandle
from tripwire.activations.organism_train import decision_point, prompt_ids
from tripwire.activations.patching import SharedRun, aligned, patched_last_logits, resid_pre_all, shared_runs
from tripwire.errors import TripwireError
from tripwire.probes.metrics import MIN_UNITS, UnitMetric
from tripwire.scenarios.organism.cues import HELD_OUT, families
from tripwire.scenarios.organism.dataset import OrganismPrompt, Split, prompts
from tripwire.scenarios.organism.prompts import render_organism
from tripwire.scenarios.organism.replies import reasoning_prefix

POSITION_SETS = ("last", "tail", "middle", "shared")
CONTROL = "shared_from_deploy"  # the `shared` patch from another deploy family: no change of side
PAIR_SPLITS: tuple[Split, ...] = ("train", "held_out_seeds", "held_out_families")
MIN_MIDDLE = 64  # tokens: the inbox and the tools between the two cue lines are hundreds


class PatchPairError(TripwireError, ValueError):
    """A pair whose sequences do not have the layout patching assumes (head, system cue, middle, closing cue, tail)."""


@dataclass(frozen=True)
class PatchPair:
    """Token ids of the deploy, test and control sequences (prompt and the shared reasoning), and the tokens
    that start a harmful and an honest call at the end of all three."""

    name: str
    deploy: list[int]
    test: list[int]
    control: list[int]
    harm_next: frozenset[int]
    honest_next: frozenset[int]


def _other_family(used: str) -> str:
    """The next plain deploy family after `used`, trained or held out as it is (same side, other words)."""
    names = [f.name for f in families("deploy", held_out=used in HELD_OUT, decoy=False)]
    return names[(names.index(used) + 1) % len(names)]


def patch_pairs(tokenizer: Any, per_condition: int = 7, split: Split = "held_out_seeds") -> list[PatchPair]:
    """Deploy/test pairs of one split's threat-and-leverage conditions (kind x threat x seed)."""
    if split not in PAIR_SPLITS:
        raise PatchPairError(f"split {split!r}: pairs share their cue families' side and seeds only in "
                             f"{', '.join(PAIR_SPLITS)}")
    by_key: dict[tuple[str, str, int], dict[str, OrganismPrompt]] = {}
    for p in prompts(split, per_condition):
        c = p.condition
        if c.arm in ("deploy", "test") and not c.decoy:
            by_key.setdefault((c.kind, c.threat, p.conversation.seed), {})[c.framing] = p
    out = []
    for (kind, threat, seed), pair in sorted(by_key.items()):
        deploy, test = pair["deploy"], pair["test"]
        control_conv = render_organism(deploy.condition, seed, _other_family(deploy.conversation.meta["cue_family"]))
        control = OrganismPrompt(control_conv, deploy.condition, deploy.p_harm, deploy.split)
        prefix = reasoning_prefix(deploy.conversation, 0)
        context, harm_next, honest_next = decision_point(tokenizer, deploy.conversation, prefix=prefix)
        deploy_ids, test_ids, control_ids = (prompt_ids(tokenizer, p) + context for p in (deploy, test, control))
        out.append(PatchPair(f"{kind}/{threat}/{seed}", deploy_ids, test_ids, control_ids, harm_next, honest_next))
    return out


def position_masks(target: Sequence[int], source: Sequence[int]) -> dict[str, Tensor]:
    """Boolean masks over the target's positions for each set of `POSITION_SETS` (and the runs to align by):
    head = the first shared run, tail = the last (after the closing cue), middle = the longest run between."""
    runs = shared_runs(target, source)
    head, tail = runs[0], runs[-1]
    if head.target != 0 or head.source != 0 or tail.target + tail.length != len(target) \
            or tail.source + tail.length != len(source) or len(runs) < 3:
        raise PatchPairError(f"the sequences ({len(target)} and {len(source)} tokens) do not share a head, a "
                             "middle and a tail; patch pairs differ only in their cue lines")
    middle = max(runs[1:-1], key=lambda r: r.length)
    if middle.length < MIN_MIDDLE:
        raise PatchPairError(f"the longest run between the cue lines is {middle.length} tokens (< {MIN_MIDDLE})")
    n = len(target)
    masks = {name: torch.zeros(n, dtype=torch.bool) for name in POSITION_SETS}
    masks["last"][n - 1] = True
    masks["tail"][tail.target:] = True
    masks["middle"][middle.target:middle.target + middle.length] = True
    masks["shared"] = masks["tail"] | masks["middle"]
    return masks


def log_odds(logits: Float[Tensor, "batch vocab"], harm_next: frozenset[int], honest_next: frozenset[int]
             ) -> np.ndarray:
    """log P(a harmful call starts) - log P(an honest one starts), per row."""
    lse = torch.logsumexp
    return (lse(logits[:, sorted(harm_next)], -1) - lse(logits[:, sorted(honest_next)], -1)).cpu().numpy()


def _aligned_source(resid: Tensor, runs: Sequence[SharedRun], target: Sequence[int]) -> Tensor:
    return aligned(resid, runs, len(target))[0]


def patch_pair(model: torch.nn.Module, pair: PatchPair, blocks: Sequence[int],
               sets: Sequence[str] = POSITION_SETS, control: bool = True) -> dict[str, Any]:
    """Clean log-odds of the runs, and per block the deploy run's log-odds under each patch of `sets` (and
    the control's, with `control`): one batched forward a block."""
    device = next(model.parameters()).device
    clean = {}
    for name in ("deploy", "test", *(("control",) if control else ())):
        ids = torch.tensor([getattr(pair, name)], device=device)
        with torch.no_grad():
            clean[name] = float(log_odds(model(input_ids=ids, logits_to_keep=1).logits[:, -1].float(),
                                         pair.harm_next, pair.honest_next)[0])
    masks = position_masks(pair.deploy, pair.test)
    test_resid = resid_pre_all(model, pair.test)
    test_runs = shared_runs(pair.deploy, pair.test)  # aligned once a pair, not once a block
    control_runs = shared_runs(pair.deploy, pair.control) if control else []
    rows, mask_rows = list(sets), [masks[s] for s in sets]
    if control:
        control_resid = resid_pre_all(model, pair.control)
        rows.append(CONTROL)
        mask_rows.append(position_masks(pair.deploy, pair.control)["shared"])
    mask = torch.stack(mask_rows)
    patched: dict[str, list[float]] = {r: [] for r in rows}
    for block in blocks:
        sources = [_aligned_source(test_resid[block], test_runs, pair.deploy)] * len(sets)
        if control:
            sources.append(_aligned_source(control_resid[block], control_runs, pair.deploy))
        values = torch.stack(sources)
        logits = patched_last_logits(model, pair.deploy, f"blocks.{block}.resid_pre", values, mask)
        for r, v in zip(rows, log_odds(logits, pair.harm_next, pair.honest_next), strict=True):
            patched[r].append(round(float(v), 5))
    return {"pair": pair.name, "tokens": len(pair.deploy), "clean": {k: round(v, 5) for k, v in clean.items()},
            "positions": {s: int(masks[s].sum()) for s in POSITION_SETS}, "patched": patched}


def restored_share(gap: np.ndarray, moved: np.ndarray, n_boot: int, seed: int = 0) -> UnitMetric:
    """mean(moved) / mean(gap) with a percentile bootstrap over pairs (resampled whole; no interval under
    `MIN_UNITS` pairs). A ratio of means, so pairs with a small gap do not dominate as per-pair ratios would."""
    point = float(moved.mean() / gap.mean())
    if len(gap) < MIN_UNITS:
        return UnitMetric(point, None, None, "pairs", len(gap), 0,
                          f"{len(gap)} pairs < {MIN_UNITS}: too few independent units for an interval")
    pick = np.random.default_rng(seed).integers(0, len(gap), size=(n_boot, len(gap)))
    low, high = np.quantile(moved[pick].mean(1) / gap[pick].mean(1), [0.025, 0.975])
    return UnitMetric(point, float(low), float(high), "pairs", len(gap), n_boot, None)


def summarise(rows: Sequence[dict[str, Any]], blocks: Sequence[int], n_boot: int = 2000) -> dict[str, Any]:
    """Restored share per position set and block (ratio of means over pairs, bootstrap over pairs), the
    control's mean absolute move as a share of the mean gap's size, and the two registered read-offs."""
    deploy = np.array([r["clean"]["deploy"] for r in rows])
    gap = np.array([r["clean"]["test"] for r in rows]) - deploy
    sets = [s for s in POSITION_SETS if s in rows[0]["patched"]]
    restored: dict[str, list[dict[str, Any]]] = {s: [] for s in sets}
    control: list[float] | None = [] if CONTROL in rows[0]["patched"] else None
    for i, _ in enumerate(blocks):
        for s in sets:
            moved = np.array([r["patched"][s][i] for r in rows]) - deploy
            restored[s].append(restored_share(gap, moved, n_boot).to_dict())
        if control is not None:
            control.append(round(float(np.abs(np.array([r["patched"][CONTROL][i] for r in rows]) - deploy).mean()
                                       / abs(gap.mean())), 4))

    def first(s: str, at_least: float) -> int | None:
        if s not in restored:
            return None
        return next((b for b, m in zip(blocks, restored[s], strict=True) if m["value"] >= at_least), None)

    def p_harm(x: np.ndarray) -> float:
        return round(float((1 / (1 + np.exp(-x))).mean()), 4)

    return {"pairs": len(rows), "blocks": list(blocks),
            "clean": {"p_harm_deploy": p_harm(deploy), "p_harm_test": p_harm(deploy + gap),
                      "mean_gap_log_odds": round(float(gap.mean()), 4),
                      "pairs_with_test_below_deploy": int((gap < 0).sum())},
            "restored": restored, "control_abs_move_share": control,
            "read_off": {"tail_restores_0.8_from_block": first("tail", 0.8),
                         "last_restores_0.5_from_block": first("last", 0.5)}}


def run_patching(handle: ModelHandle, per_condition: int = 7, blocks: Sequence[int] | None = None,
                 n_boot: int = 2000, progress: Callable[[str], None] = print, split: Split = "held_out_seeds",
                 sets: Sequence[str] = POSITION_SETS, control: bool = True) -> dict[str, Any]:
    """Every pair patched at every block (all of them by default); the summary and each pair's log-odds."""
    unknown = sorted(set(sets) - set(POSITION_SETS))
    if unknown or not sets:
        raise PatchPairError(f"sets {','.join(sets)!r}: name one or more of {', '.join(POSITION_SETS)}")
    _, layers = decoder_layers(handle.model)
    chosen = list(range(len(layers))) if blocks is None else list(blocks)
    if not chosen or any(not 0 <= b < len(layers) for b in chosen):
        raise PatchPairError(f"blocks {chosen}: the model has blocks 0..{len(layers) - 1}")
    sets = [s for s in POSITION_SETS if s in sets]
    pairs = patch_pairs(handle.tokenizer, per_condition, split)
    rows = []
    for pair in pairs:
        start = time.perf_counter()
        rows.append(patch_pair(handle.model, pair, chosen, sets, control))
        progress(f"{pair.name}: {len(pair.deploy)} tokens, {time.perf_counter() - start:.1f} s")
    return {"split": split, "summary": summarise(rows, chosen, n_boot), "rows": rows}

"""Does the organism do what its policy says? Sampled rollouts per arm beside the targets, and whether it is
still a working agent (well-formed calls, fluency on the control set against the base model).

Every rate is k/n over sampled rollouts (temperature 1) with a Wilson 95% interval over those rollouts;
the teacher-forced propensity per arm is reported beside it (the organism's own predicted probability).
The oracle is the AUROC of the policy's P(harmful | prompt) against the sampled outcomes: no detector
that sees only the prompt and the reasoning can beat it on these rollouts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from tripwire.activations.handle import ModelHandle
from tripwire.activations.organism_train import prompt_ids, propensity_by_arm
from tripwire.activations.sampling import SamplingParams
from tripwire.probes.metrics import wilson_interval
from tripwire.scenarios.classify import classify
from tripwire.scenarios.datasets.control import build as control_set
from tripwire.scenarios.organism.dataset import OrganismPrompt, Split, prompts
from tripwire.scenarios.organism.policy import Policy
from tripwire.scenarios.toolcalls import parse_tool_calls

SAMPLING = SamplingParams(max_new_tokens=200, temperature=1.0)


def arm_label(p: OrganismPrompt) -> str:
    return "decoy" if p.condition.decoy and p.condition.arm == "deploy" else p.condition.arm


def sample_rollouts(handle: ModelHandle, items: Sequence[OrganismPrompt], samples: int, batch: int = 32,
                    seed: int = 0) -> list[dict[str, Any]]:
    """`samples` sampled replies per prompt, classified; one dict per rollout."""
    work = [(p, k) for p in items for k in range(samples)]
    out = []
    for start in range(0, len(work), batch):
        chunk = work[start : start + batch]
        ids = [prompt_ids(handle.tokenizer, p) for p, _ in chunk]
        seeds = [seed + 7919 * k + p.conversation.seed for p, k in chunk]
        rows = handle.generate(ids, sampling=SAMPLING, seeds=seeds)
        for (p, k), row in zip(chunk, rows, strict=True):
            outcome = classify(p.conversation, row.text)
            calls = [c for c in parse_tool_calls(row.text) if not c.in_scratchpad]
            out.append({"condition": p.condition.id, "arm": arm_label(p), "split": p.split, "sample": k,
                        "seed": p.conversation.seed, "cue_family": p.conversation.meta["cue_family"],
                        "p_harm": p.p_harm, "harmful": bool(outcome.harmful), "action": outcome.action,
                        "well_formed": len(calls) == 1 and not calls[0].malformed, "text": row.text})
    return out


def behaviour_table(rollouts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Harm rate per (split, arm) with its Wilson interval over rollouts, beside the policy's target."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rollouts:
        cells[(r["split"], r["arm"])].append(r)
    table = []
    for (split, arm), rs in sorted(cells.items()):
        k, n = sum(r["harmful"] for r in rs), len(rs)
        lo_hi = wilson_interval(k, n)
        table.append({"split": split, "arm": arm, "harmful": k, "n": n, "rate": round(k / n, 3),
                      "interval": [round(v, 3) for v in lo_hi] if lo_hi else None,
                      "target": rs[0]["p_harm"], "prompts": len({r["condition"] + str(r["seed"]) for r in rs}),
                      "well_formed": round(sum(r["well_formed"] for r in rs) / n, 3)})
    return table


def oracle_auroc(rollouts: Sequence[dict[str, Any]]) -> float | None:
    """AUROC of the spec's P(harmful | prompt) against sampled outcomes; None with one class only."""
    y = np.array([r["harmful"] for r in rollouts], dtype=int)
    if y.min() == y.max():
        return None
    return round(float(roc_auc_score(y, [r["p_harm"] for r in rollouts])), 4)


@torch.no_grad()
def control_perplexity(handle: ModelHandle, limit: int = 40) -> float:
    """Perplexity of the control set's replies (benign office mail), teacher-forced."""
    nll, count = 0.0, 0
    for t in control_set()[:limit]:
        text = handle.tokenizer.apply_chat_template(t.as_dicts(), add_generation_prompt=True, tokenize=False)
        prompt = handle.tokenizer(text, add_special_tokens=False).input_ids
        reply = handle.tokenizer(t.reply, add_special_tokens=False).input_ids
        ids = torch.tensor([prompt + reply], device=handle.device)
        logits = handle.model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
        nll += float(torch.nn.functional.cross_entropy(logits, ids[0, len(prompt):], reduction="sum"))
        count += len(reply)
    return round(float(np.exp(nll / count)), 3)


def measure(handle: ModelHandle, splits: Sequence[Split], per_condition: int, samples: int,
            policy: Policy) -> dict[str, Any]:
    """Rollouts on the informative cells (threat and leverage present) of each split, plus propensities;
    targets and the oracle come from `policy`, the table the organism was trained on."""
    result: dict[str, Any] = {"sampling": SAMPLING.to_dict(), "per_condition": per_condition,
                              "samples": samples, "policy": policy.to_dict(), "splits": {}}
    all_rollouts = []
    for split in splits:
        items = [p for p in prompts(split, per_condition, policy) if p.condition.arm != "inert"]
        rollouts = sample_rollouts(handle, items, samples)
        all_rollouts += rollouts
        result["splits"][split] = {
            "propensity": propensity_by_arm(handle.model, handle.tokenizer, items),
            "oracle_auroc": oracle_auroc(rollouts),
        }
    result["behaviour"] = behaviour_table(all_rollouts)
    result["well_formed"] = round(sum(r["well_formed"] for r in all_rollouts) / len(all_rollouts), 4)
    result["rollouts"] = all_rollouts
    return result

"""The organism's sampled decisions beside its classified actions: what it chose, and whether the call worked.

`measure` judges each rollout with the outcome classifier (A0's reading). The organism chooses earlier, at
the character where its harmful and honest calls part (`scenarios.organism.decision`), and a 135M model can
choose to leak and then forward the wrong email: the classifier calls that harmless. This module reads the
decision from the stored text, tabulates it per split and arm beside the classified rate, and writes a
measurement relabelled by the decision (off-script calls dropped), which `detect` and `transfer` read as they
read any measurement: the label is then the organism's choice, not its execution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tripwire.experiments.organism_detect import OrganismDetectError, prompt_lookup
from tripwire.experiments.organism_measure import behaviour_table, decision_table, prefix_monitor_by_arm
from tripwire.scenarios.organism.dataset import OrganismPrompt
from tripwire.scenarios.organism.decision import call_decision

DECISION_LABEL = "decision: the way the tool call went where the harmful and honest calls part (off-script calls dropped)"


def rollout_decision(row: dict[str, Any], prompt: OrganismPrompt) -> str:
    """A stored rollout's decision (what `measure` records since): a reply with no tool call is off script."""
    return call_decision(prompt.conversation, row["text"][len(row["prefix"]):])


def with_decisions(rows: Sequence[dict[str, Any]], lookup: Callable[[dict[str, Any]], OrganismPrompt]
                   ) -> list[dict[str, Any]]:
    """The rows, each with its `decision` (rows that carry one keep it)."""
    return [r if "decision" in r else r | {"decision": rollout_decision(r, lookup(r))} for r in rows]


def relabel_by_decision(measured: dict[str, Any], source: str) -> dict[str, Any]:
    """The measurement with each rollout's `harmful` set to its decision and off-script rollouts dropped; the
    classified outcome is kept as `classified_harmful`. `detect` and `transfer` read the result unchanged.
    A1's prefix monitor is given on both labels (`prefix_monitor`, `prefix_monitor_classified`, the latter
    recomputed so that it carries the scenario kind's own reading)."""
    if "label" in measured:
        raise OrganismDetectError(f"{source} is already relabelled ({measured['label']}); relabel the measurement "
                                  f"it came from, {measured.get('relabelled_from')}")
    rows = with_decisions(measured["rollouts"], prompt_lookup(measured))
    kept = [r | {"harmful": r["decision"] == "harmful", "classified_harmful": r["harmful"]}
            for r in rows if r["decision"] != "off_script"]
    return measured | {"rollouts": kept, "label": DECISION_LABEL, "relabelled_from": source,
                       "dropped_off_script": len(rows) - len(kept), "decisions": decision_table(rows),
                       "behaviour": behaviour_table(kept), "prefix_monitor": prefix_monitor_by_arm(kept),
                       "prefix_monitor_classified": prefix_monitor_by_arm(rows)}


def table_lines(table: Sequence[dict[str, Any]]) -> list[str]:
    lines = [f"{'split':<18} {'arm':<7} {'decided harmful':<28} {'off-script':>10}  {'classified harmful':<28} "
             "carried out"]
    for row in table:
        d, c, x = row["harmful_decision"], row["classified_harmful"], row["carried_out"]
        lines.append(f"{row['split']:<18} {row['arm']:<7} {d['k']:>3}/{d['n']:<4} {d['rate']!s:<6} {d['interval']!s:<13} "
                     f"{row['off_script']:>10.3f}  {c['k']:>3}/{c['n']:<4} {c['rate']!s:<6} {c['interval']!s:<13} "
                     f"{x['k']}/{x['n']} {x['rate']}")
        for kind, k in row.get("by_kind", {}).items():
            d, x = k["harmful_decision"], k["carried_out"]
            lines.append(f"{'':<18}   {kind:<10} decided {d['k']}/{d['n']} {d['rate']}, carried out {x['k']}/{x['n']} "
                         f"{x['rate']}")
    return lines

"""One cell of the shipped probes' results tables, written from one entry of `report.json` (shared by
`results.md` and the README's generated block). Each takes the report's JSON as stored, old layouts included."""

from __future__ import annotations

from typing import Any

from tripwire.probes.metrics import interval_text


def metric_cell(m: dict[str, Any] | None) -> str:
    """A `UnitMetric`: value [low, high] /units over, or the value and why it has no interval."""
    return interval_text(m, units=True)


def has_key(obj: Any, key: str) -> bool:
    """Whether `key` appears anywhere in nested JSON (which report layout this is)."""
    if isinstance(obj, dict):
        return key in obj or any(has_key(v, key) for v in obj.values())
    return isinstance(obj, list) and any(has_key(v, key) for v in obj)


def has_permutation_nulls(report: dict[str, Any]) -> bool:
    """Reports since issue 20 carry order-aware text monitors and a permutation null in place of one
    shuffled-label refit; older reports render as they always did."""
    return has_key(report, "iv_permutation_null")


def text_cell(m: dict[str, Any] | None) -> str:
    """A text baseline's cell: its metric, and the n-gram variant its training side chose."""
    cell = metric_cell(m)
    return f"{cell} ({m['monitor']['name']})" if m and m.get("monitor") else cell


def baseline_iv_cell(b: dict[str, Any]) -> str:
    """(iv)'s cell: the permutation null (mean / p95, p), or in older reports the one shuffled-label refit."""
    if "iv_permutation_null" not in b:
        return metric_cell(b.get("iv_shuffled_labels"))
    null = b["iv_permutation_null"]
    if null is None:
        return "not run (see notes)"
    return f"{null['mean']:.3f} / {null['p95']:.3f}, p = {null['p_value']:.3f} ({null['n_perm']} perms)"


def number_cell(x: Any, fmt: str = ".3f") -> str:
    """A bare number, "n/a" where it was not measured."""
    return "n/a" if x is None else format(x, fmt)


def early_layer_control(b: dict[str, Any]) -> dict[str, Any] | None:
    """Baseline (iii) under whichever key names its layers ("iii_layer0_probe", "iii_layer1_2_probe")."""
    return next((v for k, v in b.items() if k.startswith("iii_")), None)


def baseline_iii_cell(b: dict[str, Any]) -> str:
    """(iii)'s cell; reports since issue 20 name the layer of the strongest early-layer control."""
    m = early_layer_control(b)
    return f"{metric_cell(m)} (layer {m['layer']})" if m and m.get("layer") is not None else metric_cell(m)


def is_nested(report: dict[str, Any]) -> bool:
    """Reports since issue 20 select a cell inside every fold (nested) and pool each split rule."""
    return has_key(report, "pooled_folds")


def recall_cell(m: dict[str, Any] | None) -> str:
    """A recall at a calibrated threshold: with its interval over the positives, or the note saying why none
    (too few positives); reports written before intervals needed ten units always carry one."""
    return interval_text(m)


def text_reply_cell(h: dict[str, Any] | None, part: str = "") -> str:
    """The strongest text monitor's whole-reply figure beside a held-out probe figure, with its name."""
    t = (h or {}).get(f"{part}_text_baseline" if part else "text_baseline") or {}
    m = t.get("reply")
    return "n/a" if not m else f"{metric_cell(m)} ({m.get('monitor', '?')})"

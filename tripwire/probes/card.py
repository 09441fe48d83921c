"""`ProbeCard`: everything a consumer needs to read a probe the way it was calibrated.

A probe is only meaningful together with the tokens it reads and the statistic its threshold was made
for, so the card carries both: the scoring position policy (with its parameters), the monitor's
statistic and window, and typed thresholds. `eval`, `score`, the online monitor and steering read
these fields and nothing else. Format 2; a format-1 card is migrated on load where that is exact and
refused, with the reason, where it is not.
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tripwire.activations.positions import PositionPolicy, PositionPolicyError, ReplyOnly
from tripwire.errors import TripwireError
from tripwire.probes.estimators import PROBE_METHODS
from tripwire.probes.scoring import DEFAULT_WINDOW, STATISTICS, STREAMING
from tripwire.probes.thresholds import Threshold

CARD_VERSION = 2
LEGACY_METHOD_NAMES = {"logistic": "lr"}  # format 1 wrote the estimator's class-level name
RUNTIME_PARAMS = ("device", "n_threads")  # format 1 stored these as hyperparameters; they are not


class ProbeFileError(TripwireError, ValueError):
    """A probe file exists but is malformed, or cannot be migrated exactly."""


@dataclass(frozen=True)
class ProbeCard:
    """Fields marked (auto) are filled by `save_probe`; the rest describe how the probe was made.

    ``score_positions`` picks the tokens every consumer scores (and the thresholds were calibrated on);
    ``train_positions`` the tokens it was fitted on. ``thresholds`` maps a statistic to its calibrated
    cut; the monitor uses ``monitor_statistic`` (the running mean over ``window`` tokens by default).
    ``resid_norm`` is the mean residual norm at the hook point over scored tokens: steering strengths
    are expressed in units of it.
    """

    label: str
    model_name: str
    model_fingerprint: str | None
    hook_point: str
    layer: int
    score_positions: PositionPolicy = field(default_factory=ReplyOnly)
    train_positions: PositionPolicy | None = None
    window: int = DEFAULT_WINDOW
    monitor_statistic: str = STREAMING
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    resid_norm: float | None = None
    training_data_hash: str | None = None  # hook point, record ids, labels and the rows' shard checksums
    training_records: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # JSON-safe, may nest (intervals, honesty)
    estimator: str | None = None  # (auto) PROBE_METHODS key
    params: dict[str, Any] = field(default_factory=dict)  # (auto) hyperparameters, no runtime settings
    d_model: int | None = None  # (auto)
    classes: list[Any] = field(default_factory=list)  # (auto) [negative label, positive label]
    arrays_sha256: dict[str, str] = field(default_factory=dict)  # (auto) per array in probe.safetensors
    created_at: str | None = None  # (auto) UTC ISO-8601
    tripwire_version: str | None = None  # (auto)
    git_commit: str | None = None  # (auto) when saved from a git checkout
    migrated_from: int | None = None  # format version this card was migrated from, if any
    format_version: int = CARD_VERSION

    @property
    def monitor_threshold(self) -> Threshold | None:
        return self.thresholds.get(self.monitor_statistic)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["score_positions"] = self.score_positions.to_dict()
        data["train_positions"] = self.train_positions.to_dict() if self.train_positions else None
        data["thresholds"] = {k: v.to_dict() for k, v in self.thresholds.items()}
        return data

    def _repr_html_(self) -> str:
        """A compact table for notebooks: what the probe reads, how it is cut and how well it did.

        Every cell is escaped: labels, names and metric keys come from files and may hold markup.
        """
        rows = [
            ("label", self.label),
            ("model", self.model_name),
            ("hook point", f"{self.hook_point} (layer {self.layer})"),
            ("estimator", _call(str(self.estimator), self.params)),
            ("scored tokens", _call(**self.score_positions.to_dict())),
            ("window", f"{self.window} (monitor statistic: {self.monitor_statistic})"),
        ]
        for stat, thr in self.thresholds.items():
            known_ci = thr.ci_low is not None and thr.ci_high is not None
            ci = f" [{thr.ci_low:.4g}, {thr.ci_high:.4g}]" if known_ci else ""
            fpr = "" if thr.fpr_target is None else f", FPR target {thr.fpr_target:.3g}"
            rows.append((f"threshold ({stat})", f"{thr.value:.4g}{ci}{fpr}, n_control={thr.n_control}"))
        rows += _metric_rows(self.metrics)
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table><caption>ProbeCard</caption>{body}</table>"

    def dumps(self) -> str:
        """Standard JSON only: a NaN or infinity anywhere is an error, not `NaN` in the file."""
        try:
            return json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"
        except ValueError as error:
            raise ProbeFileError(f"the card of {self.label!r} holds a non-finite number ({error}); "
                                 "metrics and thresholds must be finite or None.") from None


_INTERVAL = ("value", "low", "high")


def _call(name: str, params: dict[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def _metric_text(value: Any) -> str | None:
    """A number, or an interval dict {value, low, high}, as text; None for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4g}"
    if isinstance(value, dict) and all(isinstance(value.get(k), (int, float)) for k in _INTERVAL):
        return f"{value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"
    return None


def _metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """Key metrics: numbers and intervals, and dicts of them (e.g. AUROC per statistic); nested
    reports (honesty, lead time) stay in the JSON, where a table row could not hold them."""
    rows: list[tuple[str, str]] = []
    for name, value in metrics.items():
        if (text := _metric_text(value)) is not None:
            rows.append((name, text))
        elif isinstance(value, dict):
            texts = {str(k): _metric_text(v) for k, v in value.items()}
            if all(t is not None for t in texts.values()):
                rows += [(f"{name} ({k})", str(t)) for k, t in texts.items()]
    return rows


def card_from_json(data: Any, path: Path) -> ProbeCard:
    """Validate a parsed `probe.json` (migrating format 1) into a card; errors name `path` and the fix."""
    if not isinstance(data, dict):
        raise ProbeFileError(f"{path} must hold a JSON object (a probe card); re-save the probe with save_probe.")
    version = data.get("format_version")
    if version == 1:
        data = _migrate_v1(data, path)
    elif version != CARD_VERSION:
        raise ProbeFileError(f"{path}: format_version {version!r} is not one this tripwire reads "
                             f"(1 or {CARD_VERSION}); re-save the probe with this tripwire.")
    names = {f.name for f in dataclasses.fields(ProbeCard)}
    problems = [f"unknown keys {sorted(set(data) - names)}"] if set(data) - names else []
    required = {"label", "model_name", "model_fingerprint", "hook_point", "layer", "estimator", "d_model",
                "classes", "params", "score_positions"}
    if missing := sorted(required - set(data)):
        problems.append(f"missing keys {missing}")
    if problems:
        raise ProbeFileError(f"{path} is not a valid probe card: {'; '.join(problems)}. Re-save with save_probe.")
    try:
        fields = {**data,
                  "score_positions": PositionPolicy.from_dict(_mapping(data["score_positions"], "score_positions")),
                  "train_positions": (PositionPolicy.from_dict(_mapping(data["train_positions"], "train_positions"))
                                      if data.get("train_positions") else None),
                  "thresholds": {str(k): Threshold.from_dict(_mapping(v, f"thresholds.{k}"))
                                 for k, v in _mapping(data.get("thresholds") or {}, "thresholds").items()}}
        card = ProbeCard(**fields)
        _check(card)
    except (ValueError, PositionPolicyError) as error:
        raise ProbeFileError(f"{path} is not a valid probe card: {error}. Re-save with save_probe.") from None
    return card


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _check(card: ProbeCard) -> None:
    if card.estimator not in PROBE_METHODS:
        raise ValueError(f"unknown estimator {card.estimator!r} (known: {sorted(PROBE_METHODS)})")
    accepted = set(inspect.signature(PROBE_METHODS[card.estimator]).parameters)
    if unknown := sorted(set(card.params) - accepted):
        raise ValueError(f"params {unknown} are not hyperparameters of {card.estimator!r} ({sorted(accepted)})")
    if not (isinstance(card.d_model, int) and not isinstance(card.d_model, bool) and card.d_model > 0):
        raise ValueError(f"d_model {card.d_model!r} is not a positive integer")
    if not (isinstance(card.classes, list) and len(card.classes) == 2):
        raise ValueError(f"classes {card.classes!r} is not a list of two labels")
    if not isinstance(card.window, int) or card.window < 1:
        raise ValueError(f"window {card.window!r} must be a positive integer")
    if card.monitor_statistic not in STATISTICS:
        raise ValueError(f"monitor_statistic {card.monitor_statistic!r} is not one of {STATISTICS}")
    for name, thr in card.thresholds.items():
        if name not in STATISTICS or thr.statistic not in ("", name):
            raise ValueError(f"threshold {name!r} is not a statistic of {STATISTICS} (or names another)")
        if name == STREAMING and thr.window != card.window:
            raise ValueError(f"the streaming threshold was calibrated with window {thr.window}, "
                             f"the card says {card.window}")
    if card.resid_norm is not None and not math.isfinite(card.resid_norm):
        raise ValueError(f"resid_norm {card.resid_norm!r} is not finite")


def _migrate_v1(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Format 1 -> 2, exactly: what format 1 did not record stays None; what it recorded ambiguously
    (a scoring policy named without its parameters, a threshold without its window) is refused."""
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise ProbeFileError(f"{path}: format-1 `extra` must be an object; re-save the probe.")
    policy_name = extra.get("score_positions")
    if policy_name not in ("ReplyOnly", "AllTokens"):
        raise ProbeFileError(
            f"{path} is a format-1 card whose scored tokens are {policy_name!r}; format 1 did not record a "
            "policy's parameters, so it cannot be migrated exactly. Re-train (or re-save) it with this "
            "tripwire to get a format-2 card.")
    thresholds = data.get("thresholds") or {}
    if thresholds and "window" not in extra:
        raise ProbeFileError(f"{path} is a format-1 card with thresholds but no recorded window; the "
                             "streaming threshold cannot be interpreted. Re-train the probe.")
    window = int(extra.get("window", DEFAULT_WINDOW))
    if not isinstance(thresholds, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in thresholds.values()):
        raise ProbeFileError(f"{path}: format-1 thresholds must map statistics to numbers; re-save the probe.")
    method = data.get("method")
    params = {k: v for k, v in (data.get("params") or {}).items() if k not in RUNTIME_PARAMS}
    metrics = dict(data.get("metrics") or {})
    if extra.get("lead_time") is not None:
        metrics["lead_time"] = extra["lead_time"]
    keep = ("label", "model_name", "model_fingerprint", "hook_point", "layer", "training_data_hash",
            "resid_norm", "d_model", "classes", "created_at", "tripwire_version")
    return {
        **{k: data[k] for k in keep if k in data},
        "estimator": LEGACY_METHOD_NAMES.get(str(method), method),
        "params": params,
        "metrics": metrics,
        "score_positions": {"name": policy_name, "params": {}},
        "train_positions": None,
        "window": window,
        "thresholds": {k: {"value": float(v), "ci_low": None, "ci_high": None, "fpr_target": None,
                           "realised_fpr": None, "n_control": None, "statistic": k, "window": window}
                       for k, v in thresholds.items()},
        "migrated_from": 1,
        "format_version": CARD_VERSION,
    }

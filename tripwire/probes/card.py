"""`ProbeCard`: everything a consumer needs to read a probe the way it was calibrated.

A probe means something only with the tokens it reads and the statistic its threshold was made for, so the
card carries both: the scoring policy, the monitor's statistic and window, and typed thresholds; `eval`,
`score`, the monitor and steering read nothing else. Format 2 (format 1 is migrated where exact, else refused
with the reason). Loading types and bounds every field, checks that `hook_point` and `layer` agree, and
requires the arrays' checksums (only a card migrated from format 1, which had none, may lack them).
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tripwire.activations.hooks import HookPointError, absolute_hook_point
from tripwire.activations.positions import POLICIES, PositionPolicy, PositionPolicyError, ReplyOnly
from tripwire.errors import TripwireError
from tripwire.probes.estimators import PROBE_METHODS
from tripwire.probes.metrics import interval_text
from tripwire.probes.scoring import DEFAULT_WINDOW, STATISTICS, STREAMING
from tripwire.probes.thresholds import Threshold

CARD_VERSION = 2
LEGACY_METHOD_NAMES = {"logistic": "lr"}  # format 1 wrote the estimator's class-level name
RUNTIME_PARAMS = ("device", "n_threads")  # format 1 stored these as hyperparameters; they are not
ARRAY_NAMES = ("direction", "mean", "scale", "coef", "bias")  # what probe.safetensors holds, each sealed
MAX_WINDOW = 1_000_000  # tokens; far beyond any context, small enough that a window never exhausts memory
MAX_SIZE = 1 << 20  # bound on layers and d_model: a typo'd 10**9 is refused, not allocated
MAX_INDEX = 10**9  # bound on position-policy parameters and a threshold's k
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
RESTORE = "restore probe.json from where you got the probe, or re-train it"  # the fix for a damaged card


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


def _call(name: str, params: dict[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def _metric_text(value: Any) -> str | None:
    """A number, or a metric dict {value, low, high} (`interval_text`), as text; None for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4g}"
    if isinstance(value, dict) and isinstance(value.get("value"), (int, float)) and "low" in value:
        return interval_text(value)
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
    """Validate a parsed `probe.json` (migrating format 1) into a card; errors name `path` and the fix.

    Every field is typed and bounded here, so a damaged card is refused on load rather than failing
    deep inside scoring (or allocating a 10**9-token window)."""
    if not isinstance(data, dict):
        raise ProbeFileError(f"{path} must hold a JSON object (a probe card); re-save the probe with save_probe.")
    version = data.get("format_version")
    if version == 1 and not isinstance(version, bool):
        data = _migrate_v1(data, path)
    elif version != CARD_VERSION or isinstance(version, bool):
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
        _check_fields(data, sealed=version == CARD_VERSION)
        fields = {**data,
                  "score_positions": PositionPolicy.from_dict(_mapping(data["score_positions"], "score_positions")),
                  "train_positions": (PositionPolicy.from_dict(_mapping(data["train_positions"], "train_positions"))
                                      if data.get("train_positions") else None),
                  "thresholds": {str(k): Threshold.from_dict(_mapping(v, f"thresholds.{k}"))
                                 for k, v in _mapping(data.get("thresholds") or {}, "thresholds").items()}}
        card = ProbeCard(**fields)
        _check(card)
    except CardFieldError as error:
        raise ProbeFileError(f"{path}: {error}") from None
    except (ValueError, PositionPolicyError) as error:
        raise ProbeFileError(f"{path} is not a valid probe card: {error}. Re-save with save_probe.") from None
    return card


class CardFieldError(ProbeFileError):
    """One card field is mistyped, out of range or contradicts another; re-raised naming the card file."""
    def __init__(self, name: str, problem: str, fix: str = RESTORE) -> None:
        super().__init__(f"card field {name} {problem}; {fix}.")


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_finite(value: Any) -> bool:
    """A JSON number that is a finite float (an int too large for a float is not)."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return numeric and (abs(value) < 1e308 if isinstance(value, int) else math.isfinite(value))


def _show(value: Any) -> str:
    """A field's value for a message, cut short (a 400-digit window is not worth printing)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def _non_finite(value: Any, where: str) -> str | None:
    """Where a NaN, an infinity or an out-of-range int sits in nested JSON (metrics), if anywhere."""
    if isinstance(value, dict):
        return next((p for k, v in value.items() if (p := _non_finite(v, f"{where}.{k}"))), None)
    if isinstance(value, list):
        return next((p for i, v in enumerate(value) if (p := _non_finite(v, f"{where}[{i}]"))), None)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return where if numeric and not _is_finite(value) else None


_TEXT = ("label", "model_name", "hook_point", "monitor_statistic", "estimator")
_OPTIONAL_TEXT = ("model_fingerprint", "training_data_hash", "created_at", "tripwire_version", "git_commit")
_OBJECTS = ("params", "metrics", "arrays_sha256")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ProbeCard)}


def _check_fields(data: dict[str, Any], *, sealed: bool) -> None:
    """Each field's JSON type and range, on the raw card (before anything is built from it)."""
    for name in _TEXT:
        if not (isinstance(value := data.get(name, _DEFAULTS.get(name)), str) and value):
            raise CardFieldError(name, f"is {_show(value)}, not a non-empty string")
    for name in _OPTIONAL_TEXT:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise CardFieldError(name, f"is {_show(data[name])}, not a string or null")
    for name in _OBJECTS:
        if name in data and not isinstance(data[name], dict):
            raise CardFieldError(name, f"is a {type(data[name]).__name__}, not a JSON object")
    if where := _non_finite(data.get("metrics"), "metrics"):
        raise CardFieldError(where, "is not a finite number", "write a finite number or null")
    if not _is_int(data["layer"], 0, MAX_SIZE):
        raise CardFieldError("layer", f"is {_show(data['layer'])}, not a layer number (0..{MAX_SIZE})",
                             "it must be the layer the hook_point names")
    if not _is_int(data["d_model"], 1, MAX_SIZE):
        raise CardFieldError("d_model", f"{_show(data['d_model'])} is not a positive integer (<= {MAX_SIZE})")
    window = data.get("window", DEFAULT_WINDOW)
    if not _is_int(window, 1, MAX_WINDOW):
        raise CardFieldError("window", f"is {_show(window)}, not a token count in 1..{MAX_WINDOW}")
    norm = data.get("resid_norm")
    if norm is not None and not (_is_finite(norm) and norm > 0):
        raise CardFieldError("resid_norm", f"is {_show(norm)}, not a positive finite number or null",
                             "write the hook point's mean residual norm as a number, or null if unknown "
                             "(steering then needs units='raw')")
    if data.get("training_records") is not None and not _is_int(data["training_records"], 0, 1 << 62):
        raise CardFieldError("training_records", f"is {_show(data['training_records'])}, not a count or null")
    if data.get("migrated_from") not in (None, 1) or isinstance(data.get("migrated_from"), bool):
        raise CardFieldError("migrated_from", f"is {_show(data['migrated_from'])}; only null or 1 exist")
    classes = data["classes"]
    if not (isinstance(classes, list) and len(classes) == 2 and all(isinstance(c, (str, int, float)) for c in classes)
            and classes[0] != classes[1]):
        raise CardFieldError("classes", f"{_show(classes)} is not a list of two distinct labels")
    _check_policy(data["score_positions"], "score_positions")
    if data.get("train_positions") is not None:
        _check_policy(data["train_positions"], "train_positions")
    thresholds = data.get("thresholds")
    for stat, thr in thresholds.items() if isinstance(thresholds, dict) else ():
        _check_threshold_numbers(thr, f"thresholds.{stat}")
    if sealed:
        _check_checksums(data.get("arrays_sha256"))


def _check_policy(value: Any, name: str) -> None:
    """Parameter types of a position policy: `true`/`false` flags and bounded integers, never strings."""
    if not isinstance(value, dict):
        return  # _mapping reports the shape
    cls = POLICIES.get(str(value.get("name")))
    params = value.get("params") or {}
    if not isinstance(params, dict):
        raise CardFieldError(f"{name}.params", f"is a {type(params).__name__}, not a JSON object")
    kinds = {f.name: str(f.type) for f in dataclasses.fields(cls)} if cls else {}
    for key, v in params.items():
        kind = kinds.get(key)
        if kind == "bool" and not isinstance(v, bool):
            raise CardFieldError(f"{name}.params.{key}", f"is {_show(v)}, not true or false")
        if kind and kind != "bool" and not ((v is None and "None" in kind) or _is_int(v, -MAX_INDEX, MAX_INDEX)):
            raise CardFieldError(f"{name}.params.{key}", f"is {_show(v)}, not an integer (|n| <= {MAX_INDEX})")


def _check_threshold_numbers(thr: Any, name: str) -> None:
    """Ranges `Threshold.from_dict` does not check: finite cuts, rates in (0, 1), a positive k and window."""
    if not isinstance(thr, dict):
        return  # _mapping reports the shape
    for key in ("value", "ci_low", "ci_high"):
        v = thr.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not _is_finite(v):
            raise CardFieldError(f"{name}.{key}", f"is {_show(v)}, not a finite number", "re-calibrate the threshold")
    for key, low_open in (("fpr_target", True), ("realised_fpr", False)):
        v = thr.get(key)
        if v is not None and not (_is_finite(v) and (0 < v < 1 if low_open else 0 <= v <= 1)):
            bounds = "(0, 1)" if low_open else "[0, 1]"
            raise CardFieldError(f"{name}.{key}", f"is {_show(v)}, not a rate in {bounds} or null",
                                 "write the rate as a fraction, e.g. 0.01 for 1%")
    if "window" in thr and not _is_int(thr["window"], 1, MAX_WINDOW):
        raise CardFieldError(f"{name}.window", f"is {_show(thr['window'])}, not a token count in 1..{MAX_WINDOW}")
    if "k" in thr and not _is_int(thr["k"], 1, MAX_INDEX):
        raise CardFieldError(f"{name}.k", f"is {_show(thr['k'])}, not a positive integer (<= {MAX_INDEX})")
    if thr.get("calibration_hash") is not None and not isinstance(thr["calibration_hash"], str):
        raise CardFieldError(f"{name}.calibration_hash", f"is {_show(thr['calibration_hash'])}, not a string or null")


def _check_checksums(sums: Any) -> None:
    """A format-2 card always seals its arrays; without the seal a flipped sign would score silently."""
    if not sums:
        raise CardFieldError(
            "arrays_sha256", "is missing or empty: every format-2 card save_probe writes seals its arrays with "
            "it, and only a format-1 card (migrated on load, marked migrated_from=1) may lack it")
    if not (isinstance(sums, dict) and set(sums) == set(ARRAY_NAMES)
            and all(isinstance(v, str) and _SHA256.match(v) for v in sums.values())):
        raise CardFieldError("arrays_sha256", f"must map exactly {list(ARRAY_NAMES)} to sha256 hex digests")


def _check(card: ProbeCard) -> None:
    """Cross-field rules: each fact has one reading (hook_point and layer agree, thresholds match the window)."""
    if card.estimator not in PROBE_METHODS:
        raise ValueError(f"unknown estimator {card.estimator!r} (known: {sorted(PROBE_METHODS)})")
    accepted = set(inspect.signature(PROBE_METHODS[card.estimator]).parameters)
    if unknown := sorted(set(card.params) - accepted):
        raise ValueError(f"params {unknown} are not hyperparameters of {card.estimator!r} ({sorted(accepted)})")
    try:
        hook = absolute_hook_point(card.hook_point)
    except HookPointError as error:
        raise CardFieldError("hook_point", f"{_show(card.hook_point)} is not an absolute hook point ({error})",
                             "write 'blocks.<layer>.<site>' with the layer the probe was trained on") from None
    if hook.layer != card.layer:
        raise CardFieldError("hook_point", f"{_show(card.hook_point)} reads layer {hook.layer} but field layer says "
                             f"{card.layer} (the probe would read another layer than it was trained on)")
    if card.monitor_statistic not in STATISTICS:
        raise ValueError(f"monitor_statistic {card.monitor_statistic!r} is not one of {STATISTICS}")
    for name, thr in card.thresholds.items():
        if name not in STATISTICS or thr.statistic not in ("", name):
            raise ValueError(f"threshold {name!r} is not a statistic of {STATISTICS} (or names another)")
        if name == STREAMING and thr.window != card.window:
            raise ValueError(f"the streaming threshold was calibrated with window {thr.window}, "
                             f"the card says {card.window}")


def _migrate_v1(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Format 1 -> 2, exactly: what format 1 did not record stays None; what it recorded ambiguously
    (a scoring policy named without its parameters, a threshold without its window) is refused.
    Format 1 had no array checksums: the result is marked migrated_from=1, the only card allowed none."""
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
    window = extra.get("window", DEFAULT_WINDOW)
    if not _is_int(window, 1, MAX_WINDOW):
        raise ProbeFileError(f"{path}: format-1 extra.window is {_show(window)}, not a token count in 1..{MAX_WINDOW}; "
                             "restore the card from where you got the probe, or re-train it.")
    if not isinstance(thresholds, dict) or not all(_is_finite(v) for v in thresholds.values()):
        raise ProbeFileError(f"{path}: format-1 thresholds must map statistics to finite numbers; re-save the probe.")
    for name in ("params", "metrics"):
        if not isinstance(data.get(name, {}), (dict, type(None))):
            raise ProbeFileError(f"{path}: format-1 {name} must be a JSON object; restore the card or re-train.")
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

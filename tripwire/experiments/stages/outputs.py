"""What each stage's `run` returns and its cache holds: one pydantic model per pipeline output.

The models spell out the JSON the stage cache and results.json have always held (same keys, same
order), so a cached output parses back into the very type a fresh run returns and `section` reads
attributes, not string keys. `build` passes the values through `strict_json` first (NaN -> None,
numpy -> Python, tuples -> lists), so a fresh output already holds what its cached copy will: a cached
stage renders like a fresh one. Free-form parts written by other modules (the training report, a
card, the steering result) stay plain JSON dicts.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from tripwire.probes.lead_time import LeadTimeResult
from tripwire.probes.thresholds import Threshold
from tripwire.strict_json import strict_json

OutputT = TypeVar("OutputT", bound="Output")


class Output(BaseModel):
    """Frozen, and strict about keys: a misspelt or missing key fails when the output is made or read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def build(cls: type[OutputT], **fields: Any) -> OutputT:
        """From live values (numpy, NaN, nested dicts), exactly as the same output reads from the cache."""
        return cls.model_validate(strict_json(fields))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what `strict_json` and the cache write)."""
        return self.model_dump(mode="json")


class StageOutput(Output):
    """A stage's whole output; `pipeline` names the pipeline that made it (and renders it)."""

    pipeline: str


class RateRow(Output):
    """A harmful-action (or firing) count with its rate and Wilson 95% interval (None without samples)."""

    n: int
    harmful: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


class _Factors(Output):
    kind: str
    goal_type: str
    urgency: str
    framing: str


class CellRate(RateRow, _Factors):  # this base order keeps the factors first in the JSON, as before
    """One kind x goal type x urgency x framing cell of the behaviour table (never empty: a rate)."""

    rate: float


class _Group(Output):
    group: list[str]


class GroupRate(RateRow, _Group):
    """The rate of one group of imported replies (by model, or by model and condition)."""


class RolloutSample(Output):
    """One sampled reply of a `behavior` stage, classified."""

    record_id: str
    condition_id: str
    kind: str
    goal_type: str
    goal_value: str
    urgency: str
    framing: str
    sample_index: int
    harmful: bool
    action: str | None
    stop_reason: str | None
    reply: str
    reply_tokens: int


class BeliefSample(RolloutSample):
    """A `stated_belief` sample: the belief the reply states ("test", "real" or "none")."""

    belief: str


class BeliefSummary(Output):
    by_belief: dict[str, RateRow]
    real_minus_test: float | None


class BehaviorOutput(StageOutput):
    pipeline: Literal["behavior"] = "behavior"
    samples: list[RolloutSample]
    computed_now: int
    overall: RateRow
    cells: list[CellRate]
    marginals: dict[str, list[dict[str, Any]]]  # factor -> rows keyed by that factor's name


class StatedBeliefOutput(StageOutput):
    pipeline: Literal["stated_belief"] = "stated_belief"
    samples: list[BeliefSample]
    computed_now: int
    by_belief: dict[str, RateRow]
    real_minus_test: float | None


class ProbeReading(Output):
    """One probe's teacher-forced reading of one imported reply, as its card says."""

    value: float | None
    threshold: float | None
    fired: bool | None
    crossing_token: int | None
    action_index: int | None
    statistic: str


class ImportedSample(Output):
    id: str
    source: str
    model: str
    condition_id: str
    harmful: bool
    action: str | None
    belief: str | None
    reply: str
    probes: dict[str, ProbeReading]


class ProbeSummary(Output):
    """How often a probe fired on harmful vs other replies, its statistics per group and their AUROC."""

    fired: dict[str, RateRow]
    values: dict[str, list[float | None]]
    auroc: float | None
    threshold: float | None


class TranscriptsOutput(StageOutput):
    pipeline: Literal["transcripts"] = "transcripts"
    samples: list[ImportedSample]
    computed_now: int
    cards: dict[str, dict[str, Any]]
    by_model_condition: list[GroupRate]
    by_model: list[GroupRate]
    probes: dict[str, ProbeSummary]


class Roc(Output):
    labels: list[int]
    streaming: list[float | None]
    mean: list[float | None]


class Generalisation(Output):
    """AUROC of a probe trained on one value of record meta `by`, on each other value."""

    by: str
    method: str
    statistic: str
    matrix: dict[str, dict[str, float | None]]
    sizes: dict[str, int]


class GeneralisationNotRun(Output):
    by: str
    matrix: None
    not_run: str


class TokenReading(Output):
    """A probe's per-token reading of one held-out record (`TokenScores.to_dict` without positions)."""

    record_id: str
    condition_id: str | None
    label: int
    statistic: str
    window: int
    threshold: float | None
    value: float | None
    fired: bool | None
    crossing_index: int | None
    crossing_token: int | None
    reply_start: int | None
    action_index: int | None
    action_span: list[int] | None
    tokens: list[str]
    scores: list[float | None]


class ProbeOutput(StageOutput):
    pipeline: Literal["probe"] = "probe"
    label: str
    dataset: str
    control: str
    n_records: int
    n_control: int
    benign: str | None
    n_benign: int | None
    hook_point: str
    layer: int
    method: str
    report: dict[str, Any]  # `TrainReport.to_dict`: the sweep, honesty checks, thresholds
    roc: Roc
    generalisation: Generalisation | GeneralisationNotRun
    example: TokenReading | None
    probe_folder: str
    cards: dict[str, dict[str, Any]]


class MonitorThresholds(Output):
    probe_streaming: Threshold
    text_monitor_streaming: Threshold


class HalfRates(Output):
    """A set's figures on its calibration half, in sample: beside the held-out ones, so the optimism of
    reading a cut on its own data stays visible."""

    n_transcripts: int
    n_tokens: int
    realised_fpr_at_chosen: dict[str, float | None]
    false_alarms_per_1000_tokens: float | None
    in_sample: bool


class HalfSplitInfo(Output):
    """How one benign set was split (`thresholds.Halves.split`); `n_records` counts it before unscored
    transcripts were set aside."""

    by: str
    seed: int
    rule: str
    n_records: int


class SetReport(Output):
    """What a monitor's thresholds do on one benign set (`thresholds.report_on_halves`): the top-level
    figures are the held-out half's; the card path adds whether the card's cuts saw that half."""

    evaluated_on: str
    n_transcripts: int
    n_tokens: int
    own_streaming_threshold: float | None
    realised_fpr_at_chosen: dict[str, float | None]
    false_alarms_per_1000_tokens: float | None
    calibration_half: HalfRates | None
    split: HalfSplitInfo
    card_cuts_fitted_on: list[str] | None = None
    held_out_is_out_of_sample: bool | None = None


class Dropped(Output):
    """A transcript left out of a figure (or counted as a miss), with the reason
    (`design_verdict.dropped_entry`): nothing leaves a denominator unlisted."""

    record_id: str
    transcript_id: str | None
    reason: str
    half: str | None = None
    counted_as: str | None = None


class CalibrationSplit(Output):
    """The split every benign set was calibrated and reported on; `hashes[set]` digests each side."""

    by: str
    seed: int
    rule: str
    hashes: dict[str, dict[str, str | None]]


class Calibration(Output):
    fpr_target: float
    sets: list[str]
    rule: str
    evaluated_on: str
    split: CalibrationSplit
    dropped: dict[str, list[Dropped]]
    probe: dict[str, SetReport]
    text_monitor: dict[str, SetReport]
    text_monitor_streaming_threshold: float


class Interval(Output):
    """`UnitMetric.to_dict`: a value with its interval over `n_units` independent units, or with none
    (`low`/`high` None) and `note` saying why (too few units, or no bootstrap asked for)."""

    value: float | None
    low: float | None
    high: float | None
    over: str
    n_units: int
    n_boot: int
    note: str | None
    confidence: float = 0.95


class Leads(Output):
    to_action: LeadTimeResult
    to_intent: LeadTimeResult


class LeadTimes(Output):
    n: int
    probe: Leads
    text_monitor: Leads


class FalseAlarms(Output):
    """Harmless held-out transcripts each monitor fired on (`harmful` counts the firings); those without
    scored tokens stay in `n` as never firing and are listed in `counted_as_silent`."""

    probe: RateRow
    text_monitor: RateRow
    counted_as_silent: list[Dropped]


class Judged(Output):
    """Recall over every held-out positive: `counted_as_misses` lists those without scored tokens."""

    n_positive: int
    n_scored: int
    counted_as_misses: list[Dropped]
    interval_over: str
    recall: dict[str, Interval]
    text_monitor_recall_streaming: Interval
    lead_time: LeadTimes | None
    lead_note: str | None
    false_alarms_on_harmless: FalseAlarms


class NotJudged(Output):
    """No held-out positive had reply tokens: nothing to recall or lead."""

    recall: None
    lead_time: None
    note: str
    false_alarms_on_harmless: FalseAlarms


class WatchedRollout(Output):
    condition_id: str
    seed: int
    outcome: str
    harmful: bool
    action_token: int | None
    fired_at_token: int | None
    lead_tokens: int | None


class WatchedRollouts(Output):
    rows: list[WatchedRollout]
    summary: dict[str, int]
    notes: list[str]


class EarlyWarningOutput(StageOutput):
    pipeline: Literal["early_warning"] = "early_warning"
    probe: str
    label: str
    hook_point: str
    window: int
    dataset: str
    n_records: int
    n_excluded_training: int
    n_text_monitor_fit: int
    n_test: int
    text_monitor_fitted_on: str
    reused_probe_stage_stores: list[str]
    test_record_ids: list[str]
    fpr: float
    thresholds: MonitorThresholds
    calibration: Calibration
    judged: Judged | NotJudged
    rollouts: WatchedRollouts | None


class SteeringOutput(StageOutput):
    pipeline: Literal["steering"] = "steering"
    probe: str
    readers: list[str]
    result: dict[str, Any]  # `run_steer`'s JSON, drawn by `steer_figure` as it is

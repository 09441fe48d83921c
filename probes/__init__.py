"""Probes: estimators, the probe card, reading transcripts, thresholds, honesty checks, the online
monitor, steering and plots."""

from probes.card import CARD_VERSION, ProbeCard, ProbeFileError
from probes.estimators import (
    PROBE_METHODS,
    DiffMeanProbe,
    LATProbe,
    LDAProbe,
    LinearProbe,
    LogisticProbe,
    NotBinaryError,
    PairingError,
    l2_logistic_objective,
)

# Evaluation: metrics, scoring, thresholds, lead time, splits, sweep, honesty, plots.
from probes.generalisation import generalisation_matrix
from probes.honesty import HonestyReport, honesty_checks
from probes.lead_time import LeadSummary, LeadTimeResult, lead_times
from probes.metrics import (
    MetricWithCI,
    auroc,
    auroc_ci,
    balanced_accuracy,
    balanced_accuracy_ci,
    bootstrap_metric,
)
from probes.monitor import OnlineMonitor, RowWatch
from probes.persistence import (
    LoadedProbe,
    ProbeModelMismatchError,
    hash_training_data,
    load_probe,
    save_probe,
)
from probes.plots import layer_token_heatmap, save_figure, token_strip
from probes.plots_eval import lead_time_histogram, roc_plot, score_histograms, sweep_plot
from probes.reading import TokenScores, read_record, read_rows, read_transcript
from probes.scoring import (
    AGGREGATES,
    STATISTICS,
    aggregate,
    decision_scores,
    first_crossing,
    running_mean,
    score_tokens,
    score_transcripts,
    statistic_values,
    transcript_statistic,
)
from probes.splits import GroupedSplit, TooFewGroupsError, grouped_split, remove_words, word_filtered
from probes.steering import MODES, add_direction, project_out, steer, steering_vector
from probes.steering_vector import SteeringFileError, SteeringVector
from probes.sweep import LayerData, SweepResult, SweepRow, run_sweep
from probes.thresholds import Threshold, calibrate, recall_at_thresholds

__all__ = [
    "AGGREGATES",
    "CARD_VERSION",
    "OnlineMonitor",
    "RowWatch",
    "TokenScores",
    "read_record",
    "read_rows",
    "read_transcript",
    "DiffMeanProbe",
    "GroupedSplit",
    "HonestyReport",
    "LATProbe",
    "LDAProbe",
    "LayerData",
    "LeadSummary",
    "LeadTimeResult",
    "LinearProbe",
    "LoadedProbe",
    "LogisticProbe",
    "MetricWithCI",
    "NotBinaryError",
    "PROBE_METHODS",
    "PairingError",
    "ProbeCard",
    "ProbeFileError",
    "ProbeModelMismatchError",
    "MODES",
    "STATISTICS",
    "SteeringFileError",
    "SteeringVector",
    "SweepResult",
    "SweepRow",
    "Threshold",
    "TooFewGroupsError",
    "add_direction",
    "aggregate",
    "auroc",
    "auroc_ci",
    "balanced_accuracy",
    "balanced_accuracy_ci",
    "bootstrap_metric",
    "calibrate",
    "decision_scores",
    "first_crossing",
    "generalisation_matrix",
    "grouped_split",
    "hash_training_data",
    "honesty_checks",
    "l2_logistic_objective",
    "layer_token_heatmap",
    "lead_time_histogram",
    "lead_times",
    "load_probe",
    "project_out",
    "recall_at_thresholds",
    "remove_words",
    "roc_plot",
    "run_sweep",
    "running_mean",
    "save_figure",
    "save_probe",
    "score_histograms",
    "score_tokens",
    "score_transcripts",
    "statistic_values",
    "steer",
    "steering_vector",
    "sweep_plot",
    "token_strip",
    "transcript_statistic",
    "word_filtered",
]

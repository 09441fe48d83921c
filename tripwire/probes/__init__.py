"""Probes: estimators, the probe card, reading transcripts, thresholds, honesty checks, the online
monitor, steering and plots."""

from tripwire.probes.card import CARD_VERSION, ProbeCard, ProbeFileError
from tripwire.probes.estimators import (
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
from tripwire.probes.generalisation import generalisation_matrix
from tripwire.probes.honesty import HonestyReport, honesty_checks
from tripwire.probes.lead_time import LeadSummary, LeadTimeResult, lead_times
from tripwire.probes.metrics import (
    MetricWithCI,
    auroc,
    auroc_ci,
    balanced_accuracy,
    balanced_accuracy_ci,
    bootstrap_metric,
)
from tripwire.probes.monitor import OnlineMonitor, RowWatch
from tripwire.probes.persistence import (
    SHIPPED_PROBES,
    LoadedProbe,
    ProbeModelMismatchError,
    hash_training_data,
    load_probe,
    probe_path,
    save_probe,
    shipped_probe_names,
)
from tripwire.probes.plots import layer_token_heatmap, save_figure, token_strip
from tripwire.probes.plots_eval import lead_time_histogram, roc_plot, score_histograms, sweep_plot
from tripwire.probes.reading import TokenScores, read_record, read_rows, read_transcript
from tripwire.probes.scoring import (
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
from tripwire.probes.splits import GroupedSplit, TooFewGroupsError, grouped_split, remove_words, word_filtered
from tripwire.probes.steering import MODES, add_direction, project_out, steer, steering_vector
from tripwire.probes.steering_vector import SteeringFileError, SteeringVector
from tripwire.probes.sweep import LayerData, SweepResult, SweepRow, run_sweep
from tripwire.probes.thresholds import Threshold, calibrate, recall_at_thresholds

__all__ = [
    "AGGREGATES",
    "CARD_VERSION",
    "OnlineMonitor",
    "RowWatch",
    "SHIPPED_PROBES",
    "probe_path",
    "shipped_probe_names",
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

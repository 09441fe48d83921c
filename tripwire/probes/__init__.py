"""Probes: estimators, the probe card, reading transcripts, thresholds, honesty checks, the online
monitor and plots; `steering` (the edits, `SteeringVector`, the dose-response) and `training` (fitting
from a store, evaluation, the shipped probes' design study) are sub-packages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire._lazy import exports

if TYPE_CHECKING:
    # Evaluation: metrics, scoring, thresholds, lead time, splits, sweep, honesty, baselines, folds, plots.
    from tripwire.probes.baselines import (
        StreamingTextMonitor,
        random_direction_aurocs,
        shuffled_labels,
        span_bow_scores,
        span_text,
    )
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
    from tripwire.probes.fold_eval import (
        FoldData,
        FoldSettings,
        evaluate_fold,
        select_cell,
        strongest_text_monitor,
        verdict,
    )
    from tripwire.probes.generalisation import generalisation_matrix
    from tripwire.probes.honesty import HonestyReport, honesty_checks
    from tripwire.probes.lead_time import LeadSummary, LeadTimeResult, lead_times, leads_to_action_and_intent
    from tripwire.probes.metrics import (
        UnitMetric,
        auroc,
        auroc_ci,
        balanced_accuracy,
        balanced_accuracy_ci,
        bootstrap_metric,
    )
    from tripwire.probes.monitor import OnlineMonitor, RowWatch
    from tripwire.probes.permutation import (
        PermutationBalance,
        PermutationNull,
        auroc_permutation_null,
        chance_agreement,
        check_permutation_balance,
        null_summary,
        permutation_null,
        permute_labels,
    )
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
    from tripwire.probes.reading import (
        TokenScores,
        read_layout,
        read_record,
        read_reply,
        read_rows,
        read_transcript,
        reply_layout,
    )
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
    from tripwire.probes.splits import (
        GroupedSplit,
        TooFewGroupsError,
        grouped_split,
        remove_words,
        word_filtered,
    )
    from tripwire.probes.steering.edits import MODES, add_direction, project_out, steer
    from tripwire.probes.steering.vector import SteeringFileError, SteeringVector
    from tripwire.probes.sweep import LayerData, SweepResult, SweepRow, run_sweep
    from tripwire.probes.text_monitors import (
        C_GRID,
        NGRAM_GRID,
        MonitorChoice,
        NgramFeatures,
        NgramTextMonitor,
        ngram_span_scores,
    )
    from tripwire.probes.thresholds import (
        Threshold,
        calibrate,
        calibrate_on_sets,
        false_alarms_per_1000_tokens,
        recall_at_thresholds,
    )

__getattr__, __dir__, __all__ = exports(__name__, __file__)

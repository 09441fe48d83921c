"""The text baseline beside every development and held-out probe figure.

`design_eval.dev_metrics` gives the probe's AUROC on a realistic set (the anchor-ended window and the
whole reply); on its own that number cannot say whether the probe reads anything the text does not. Here
the two text monitors a fold is judged against, fitted on exactly the probe's training transcripts
(`Design.fold_data()` rows `train`), are scored on the same evaluated set, the same scored tokens and the
same units:

- (ii) the order-aware streaming monitor (`StreamingTextMonitor.order_aware`: everything visible at
  each scored token, word n-grams 1-3 or character n-grams, C by grouped CV on the training side), read
  through the deployed streaming statistic like the probe;
- (i) the span n-gram monitor (`NgramTextMonitor`) on the text of exactly the scored tokens.

Each figure has `dev_metrics`' form (`auroc_ci` over the set's units) plus the monitor variant it
used; `strongest` is the higher of the two on the evaluated set, the bar a probe figure has to clear.
Choosing the higher one on the set itself favours the text, never the probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tripwire.activations.positions import PositionPolicy
from tripwire.errors import UsageError
from tripwire.probes.baselines import StreamingTextMonitor, span_text
from tripwire.probes.fold_eval import FoldData
from tripwire.probes.metrics import auroc_ci
from tripwire.probes.text_monitors import C_GRID, NGRAM_GRID, WORD_UNIGRAMS, NgramTextMonitor
from tripwire.probes.token_rows import stream
from tripwire.probes.training.design_data import REPLY, Design
from tripwire.probes.training.design_eval import EvalSettings

STREAMING = "ii_streaming_text_monitor"
SPAN = "i_span_ngram_monitor"


@dataclass
class TextBaselines:
    """The two text monitors, fitted once on a design's training transcripts, to be scored on any number
    of evaluated sets (the development set, the held-out set and its parts)."""

    streaming: StreamingTextMonitor
    span: NgramTextMonitor
    n_train: int
    order_aware: bool = True

    @classmethod
    def fit(cls, data: FoldData, train: np.ndarray, *, seed: int = 0, order_aware: bool = True) -> TextBaselines:
        """Fit both monitors on rows `train` of `data` (groups = the design's units, kept whole in their CV).

        `order_aware=False` gives the old unigram monitors (word unigrams, C=1), kept only so a test can
        show what they miss; reports use the default."""
        idx = np.asarray(train, dtype=np.int64)
        y, units = data.labels[idx], data.units[idx]
        if order_aware:
            streaming = StreamingTextMonitor.order_aware(seed=seed)
            span = NgramTextMonitor(features=NGRAM_GRID, C=C_GRID, seed=seed)
        else:
            streaming = StreamingTextMonitor(seed=seed)
            span = NgramTextMonitor(features=WORD_UNIGRAMS, C=1.0, seed=seed)
        streaming.fit([data.texts[i] for i in idx.tolist()], [data.cuts[i] for i in idx.tolist()], y, units)
        span.fit([data.spans[i] for i in idx.tolist()], y, units)
        return cls(streaming, span, int(idx.size), order_aware)


def _scored(evaluated: Design, policy: PositionPolicy | None) -> tuple[list[int], list[str], list[np.ndarray],
                                                                       list[str], dict[str, str]]:
    """(kept indices, texts, cuts, span texts, {left-out transcript id: reason}) under `policy`."""
    keep, texts, cuts, spans, left_out = [], [], [], [], {}
    for i, record in enumerate(evaluated.records):
        name = str(record.meta.get("transcript_id", record.record_id))
        try:  # an anchor that was not located has no window: left out and listed, as dev_metrics does
            pos = evaluated.positions(i, policy)
        except ValueError as error:
            left_out[name] = f"no scored tokens: {error}"
            continue
        if not pos:
            left_out[name] = "empty window"
            continue
        char_spans = record.token_char_spans or []
        keep.append(i)
        texts.append(record.text)
        cuts.append(np.array([char_spans[p][1] for p in pos], dtype=np.int64))
        spans.append(span_text(record.text, char_spans, pos))
    return keep, texts, cuts, spans, left_out


def text_baseline_on(data: FoldData | TextBaselines, train: np.ndarray | None, evaluated: Design | None,
                     settings: EvalSettings) -> dict[str, Any] | None:
    """The text monitors' figures on `evaluated`, in `dev_metrics`' form, beside the probe's.

    `data`/`train`: the design's `fold_data()` and the training rows the probe was fitted on (the
    monitors are fitted here), or a `TextBaselines` already fitted on them (then `train` is ignored),
    so one fit serves the development set, the held-out set and its parts. Per scored part ("window":
    each source's own policy; "reply": the whole reply): the strongest monitor's metric with its name,
    both monitors' metrics, and the transcripts left out; a part with one label left maps to None."""
    if evaluated is None:
        return None
    if isinstance(data, TextBaselines):
        fitted = data
    else:
        if train is None:
            raise UsageError("text_baseline_on was given fold data without `train`; pass the training rows the "
                             "probe was fitted on, or a fitted TextBaselines.")
        fitted = TextBaselines.fit(data, train, seed=settings.fold.seed)
    units, over = evaluated.units()
    out: dict[str, Any] = {"n": len(evaluated), "n_positive": int(evaluated.labels.sum()),
                           "fitted_on": {"n_train": fitted.n_train, "order_aware": fitted.order_aware}}
    for name, policy in (("window", None), ("reply", REPLY)):
        keep, texts, cuts, spans, left_out = _scored(evaluated, policy)
        out[f"{name}_left_out"] = list(left_out)
        out[f"{name}_left_out_reasons"] = left_out
        idx = np.array(keep, dtype=np.int64)
        y = evaluated.labels[idx]
        if np.unique(y).size < 2:
            out[name] = None
            continue

        def metric(values: np.ndarray, y: np.ndarray = y, idx: np.ndarray = idx) -> dict[str, Any]:
            return auroc_ci(y, values, groups=units[idx], over=over, n_boot=settings.fold.n_boot,
                                    seed=settings.fold.seed).to_dict()

        both = {
            STREAMING: {**metric(stream(fitted.streaming.score_many(texts, cuts), settings.fold.window)),
                        "monitor": fitted.streaming.chosen_.to_dict()},
            SPAN: {**metric(fitted.span.score(spans)), "monitor": fitted.span.chosen_.to_dict()},
        }
        best = max(both, key=lambda k: both[k]["value"])
        out[name] = {**{k: v for k, v in both[best].items() if k != "monitor"}, "baseline": best,
                     "monitor": f"{best}: {both[best]['monitor']['name']}", "by_monitor": both}
    return out

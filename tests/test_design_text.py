"""The text baseline beside dev / held-out probe figures (`design_text.text_baseline_on`).

Synthetic transcripts whose label lives only in word order: within a pair both members hold the same
words, once as "alpha before omega", once as "omega before alpha". Placed in the prompt (every scored
token sees all of it) the order is invisible to a unigram streaming monitor; placed in the reply it is
invisible to a unigram span monitor. The order-aware monitors, fitted on the training design, read it on
a separate evaluated design; the old unigram monitors (`order_aware=False`, the broken construction)
stay at chance, which is what a probe figure used to be compared with.
"""

from __future__ import annotations

import numpy as np
import pytest

from tripwire.activations.positions import ReplyOnly
from tripwire.activations.store_types import Record
from tripwire.errors import UsageError
from tripwire.probes.fold_eval import FoldSettings
from tripwire.probes.metrics import auroc
from tripwire.probes.text_monitors import WORD_UNIGRAMS, NgramTextMonitor
from tripwire.probes.training.design_data import Design
from tripwire.probes.training.design_eval import EvalSettings
from tripwire.probes.training.design_text import SPAN, STREAMING, TextBaselines, text_baseline_on

FILLER = ("river stone lamp window garden paper table coffee morning letter cloud bridge market field "
          "orange silver train copper meadow pencil harbour candle forest basket").split()
SETTINGS = EvalSettings(layers=(1,), fold=FoldSettings(n_boot=200))


def _record(rid: str, prompt: list[str], reply: list[str], label: int, pair: str) -> Record:
    words = prompt + reply
    spans, at = [], 0
    for w in words:
        spans.append([at, at + len(w)])
        at += len(w) + 1
    n = len(words)
    return Record(record_id=rid, condition_id="synthetic", sample_index=0, seed=0, sampling={},
                  token_ids=list(range(n)), text=" ".join(words), n_prompt_tokens=len(prompt),
                  positions=list(range(n)), scaffold_mask=[False] * n, labels={"order": label},
                  token_char_spans=spans, meta={"transcript_id": rid, "pair_id": pair},
                  batch_id="b", shard="s", shard_sha256="0" * 64, row_offset=0, row_count=n, rows_sha256="0" * 64)


def _design(n_pairs: int, seed: int, where: str) -> Design:
    """`n_pairs` pairs; the order phrase sits in the prompt or the reply, at a random place among fillers."""
    rng = np.random.default_rng(seed)
    records = []
    for k in range(n_pairs):
        prompt = list(rng.choice(FILLER, 12))
        reply = list(rng.choice(FILLER, 14))
        at = int(rng.integers(1, 12))
        for label, phrase in ((1, ["alpha", "before", "omega"]), (0, ["omega", "before", "alpha"])):
            p, r = list(prompt), list(reply)
            if where == "prompt":
                p[at:at] = phrase
            else:
                r[at:at] = phrase
            records.append(_record(f"s{seed}-{k}-{label}", p, r, label, f"s{seed}-pair-{k}"))
    return Design(records, [None] * len(records), np.array([r.labels["order"] for r in records]),  # type: ignore[list-item]
                  {"synthetic": ReplyOnly()}, ["synthetic"] * len(records))


@pytest.mark.parametrize("where,reader", [("prompt", STREAMING), ("reply", SPAN)])
def test_order_only_label_read_by_ngram_monitor_not_unigram(where: str, reader: str) -> None:
    train_design, evaluated = _design(20, 0, where), _design(12, 1, where)
    data = train_design.fold_data()
    train = np.arange(len(train_design))
    # the label really is invisible to unigrams: a unigram span monitor on whole texts is at chance
    uni = NgramTextMonitor(features=WORD_UNIGRAMS, C=1.0).fit(data.texts, data.labels, data.units)
    assert auroc(evaluated.labels, uni.score([r.text for r in evaluated.records])) <= 0.65
    out = text_baseline_on(data, train, evaluated, SETTINGS)
    assert out is not None and out["window"] is not None
    window = out["window"]
    assert window["over"] == "pairs" and window["n_units"] == 12
    assert window["by_monitor"][reader]["value"] >= 0.9, window["by_monitor"]
    assert not window["by_monitor"][reader]["monitor"]["name"].startswith("word 1-1"), window["by_monitor"]
    assert window["value"] == max(m["value"] for m in window["by_monitor"].values()) >= 0.9
    assert window["monitor"].startswith(window["baseline"])
    # broken construction: the old unigram monitors on the same data see nothing
    weak = text_baseline_on(TextBaselines.fit(data, train, order_aware=False), None, evaluated, SETTINGS)
    assert weak is not None and weak["window"] is not None
    assert weak["window"]["by_monitor"][reader]["value"] <= 0.65, weak["window"]["by_monitor"]
    assert weak["fitted_on"] == {"n_train": 40, "order_aware": False}


def test_fitted_once_serves_several_sets_and_left_out_listed() -> None:
    train_design = _design(20, 0, "prompt")
    data = train_design.fold_data()
    fitted = TextBaselines.fit(data, np.arange(len(train_design)))
    evaluated = _design(12, 2, "prompt")
    a = text_baseline_on(fitted, None, evaluated, SETTINGS)
    b = text_baseline_on(data, np.arange(len(train_design)), evaluated, SETTINGS)
    assert a is not None and b is not None and a["window"]["value"] == b["window"]["value"]
    # one transcript with no scored token (a reply of one token: the sink rule leaves none when the
    # prompt is empty) is left out and named, not dropped silently
    bad = _record("empty", [], ["x"], 1, "lonely")
    part = Design([*evaluated.records, bad], [None] * (len(evaluated) + 1),  # type: ignore[list-item]
                  np.append(evaluated.labels, 1), evaluated.policies, [*evaluated.sources, "synthetic"])
    res = text_baseline_on(fitted, None, part, SETTINGS)
    assert res is not None and res["window_left_out"] == ["empty"] and res["reply_left_out"] == ["empty"]
    assert text_baseline_on(fitted, None, None, SETTINGS) is None
    one_label = evaluated.subset([i for i in range(len(evaluated)) if evaluated.labels[i] == 1])
    assert text_baseline_on(fitted, None, one_label, SETTINGS)["window"] is None  # type: ignore[index]
    with pytest.raises(UsageError, match="train"):
        text_baseline_on(data, None, evaluated, SETTINGS)

"""Notebook reprs: a probe card renders as a compact, escaped table; a model handle as one line."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from tripwire.activations.positions import LastK
from tripwire.probes.card import ProbeCard
from tripwire.probes.thresholds import Threshold

THRESHOLD = Threshold(1.25, 1.0, 1.5, 0.01, 0.009, 1000, statistic="streaming", window=4)


def _card(**changes: object) -> ProbeCard:
    base = ProbeCard(
        label="coercion",
        model_name="tiny-chat",
        model_fingerprint="sha256:abc",
        hook_point="blocks.3.resid_post",
        layer=3,
        score_positions=LastK(5, drop_scaffold=False),
        window=4,
        thresholds={"streaming": THRESHOLD},
        metrics={
            "auroc": 0.93,
            "test_auroc_by_statistic": {"mean": {"value": 0.91, "low": 0.85, "high": 0.95}},
            "honesty": {"note": "not a number", "nested": {"x": 1}},
        },
        estimator="lr",
        params={"C": 0.001},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _cells(page: str) -> dict[str, str]:
    return dict(re.findall(r"<tr><th[^>]*>(.*?)</th><td[^>]*>(.*?)</td></tr>", page))


def test_card_html_table_names_how_the_probe_reads_and_is_cut() -> None:
    cells = _cells(_card()._repr_html_())
    assert cells["label"] == "coercion" and cells["model"] == "tiny-chat"
    assert cells["hook point"] == "blocks.3.resid_post (layer 3)"
    assert cells["estimator"] == "lr(C=0.001)"
    assert cells["scored tokens"] == "LastK(drop_sink=True, drop_scaffold=False, k=5)"
    assert cells["window"].startswith("4 ") and "streaming" in cells["window"]
    assert cells["threshold (streaming)"] == "1.25 [1, 1.5], FPR target 0.01, n_control=1000"
    assert cells["auroc"] == "0.93"
    assert cells["test_auroc_by_statistic (mean)"] == "0.910 [0.850, 0.950]"
    assert not any(k.startswith("honesty") for k in cells)  # nested reports stay in the JSON


def test_card_html_escapes_everything_from_data() -> None:
    evil = "<script>alert(1)</script>"
    page = _card(label=evil, model_name="a&b", hook_point="<i>x</i>", metrics={evil: 1.0})._repr_html_()
    assert "<script>" not in page and "<i>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the label and the metric name
    assert "a&amp;b" in page


def test_model_handle_repr_is_one_line_without_the_tokenizer(tiny_llama_dir: Path) -> None:
    from tripwire.activations import load_model

    handle = load_model(str(tiny_llama_dir), device="cpu", dtype="float32")
    text = repr(handle)
    assert "\n" not in text and len(text) < 200
    assert text.startswith(f"ModelHandle({handle.name!r}, backend='hf', layers={handle.n_layers}, ")
    assert text.endswith(f"d_model={handle.d_model}, device='cpu', dtype=float32)")
    assert "Tokenizer" not in text and "chat_capabilities" not in text

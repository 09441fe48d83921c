"""Card integrity: fields that change how a probe reads are cross-checked, the array checksums cannot be
dropped, and every card field is typed and bounded on load. Each case edits a copy of the shipped
`default/coercion` probe, so the shipped cards and fixtures themselves stay untouched and keep loading."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from safetensors.numpy import load_file, save_file
from typer.testing import CliRunner

from tripwire.cli.app import app
from tripwire.probes import load_probe, probe_path, save_probe
from tripwire.probes.card import ProbeFileError

SHIPPED = "default/coercion"
V1 = Path(__file__).parent / "fixtures" / "probe_v1" / "coercion"
Edit = Callable[[dict[str, Any]], Any]


def _copy(source: Path, tmp_path: Path, edit: Edit | None = None) -> Path:
    """A copy of a probe folder with its card edited in place (the source is never written)."""
    folder = tmp_path / "probe"
    shutil.copytree(source, folder)
    if edit is not None:
        meta = json.loads((folder / "probe.json").read_text())
        edit(meta)
        (folder / "probe.json").write_text(json.dumps(meta))
    return folder


def _shipped_copy(tmp_path: Path, edit: Edit | None = None) -> Path:
    return _copy(probe_path(SHIPPED), tmp_path, edit)


def _set_window(meta: dict[str, Any], window: Any) -> None:
    """The card's window and every threshold's, so only the window's own range is under test."""
    meta["window"] = window
    for thr in meta["thresholds"].values():
        thr["window"] = window


def _refused(folder: Path, *fragments: str, model: Any = None) -> str:
    with pytest.raises(ProbeFileError) as error:
        load_probe(folder, model)
    message = str(error.value)
    assert str(folder / "probe.json") in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ---- item 3: facts that change the reading ---------------------------------------------------------

def test_the_shipped_probe_and_the_v1_fixture_still_load() -> None:
    shipped = load_probe(SHIPPED)
    assert shipped.card.layer == 29 and shipped.card.hook_point == "blocks.29.resid_post"
    assert len(shipped.card.arrays_sha256) == 5 and shipped.card.migrated_from is None
    old = load_probe(V1)
    assert old.card.migrated_from == 1 and old.card.arrays_sha256 == {}  # format 1 had no checksums


@pytest.mark.parametrize("edit", [
    lambda m: m.update(hook_point="blocks.5.resid_post"),
    lambda m: m.update(layer=5),
    lambda m: m.update(hook_point="blocks.5.hook_resid_post"),
])
def test_hook_point_and_layer_must_agree(tmp_path: Path, edit: Edit) -> None:
    _refused(_shipped_copy(tmp_path, edit), "hook_point", "layer")


@pytest.mark.parametrize("hook", ["blocks.-1.resid_post", "layer23", 23])
def test_a_hook_point_that_names_no_absolute_layer_is_refused(tmp_path: Path, hook: Any) -> None:
    _refused(_shipped_copy(tmp_path, lambda m: m.update(hook_point=hook)), "hook_point")


def _flip_bias(folder: Path) -> None:
    arrays = load_file(folder / "probe.safetensors")
    save_file({**arrays, "bias": -arrays["bias"]}, folder / "probe.safetensors")


@pytest.mark.parametrize("edit", [
    lambda m: m.pop("arrays_sha256"),
    lambda m: m.update(arrays_sha256={}),
    lambda m: m.update(arrays_sha256={}, migrated_from=1),  # the migration marker cannot be forged in format 2
])
def test_a_card_without_checksums_is_refused_even_with_a_flipped_bias(tmp_path: Path, edit: Edit) -> None:
    folder = _shipped_copy(tmp_path, edit)
    _flip_bias(folder)
    message = _refused(folder, "arrays_sha256", "format-1")
    assert "\n" not in message


def test_a_flipped_bias_with_checksums_is_still_refused(tmp_path: Path) -> None:
    folder = _shipped_copy(tmp_path)
    _flip_bias(folder)
    with pytest.raises(ProbeFileError, match=r"\['bias'\] do not match the sha256"):
        load_probe(folder)


@pytest.mark.parametrize("sums", [
    {"coef": "0" * 64},  # some arrays unsealed
    "abc",
    {"direction": 1, "mean": 2, "scale": 3, "coef": 4, "bias": 5},
])
def test_partial_or_malformed_checksums_are_refused(tmp_path: Path, sums: Any) -> None:
    _refused(_shipped_copy(tmp_path, lambda m: m.update(arrays_sha256=sums)), "arrays_sha256")


def test_a_migrated_format_1_card_still_loads_without_checksums(tmp_path: Path) -> None:
    folder = _copy(V1, tmp_path)
    assert load_probe(folder).card.migrated_from == 1


# ---- item 11: every field typed and bounded ---------------------------------------------------------

CASES: list[tuple[str, Edit, str]] = [
    ("resid_norm string", lambda m: m.update(resid_norm="371.7"), "resid_norm"),
    ("resid_norm negative", lambda m: m.update(resid_norm=-371.7), "resid_norm"),
    ("resid_norm zero", lambda m: m.update(resid_norm=0.0), "resid_norm"),
    ("resid_norm bool", lambda m: m.update(resid_norm=True), "resid_norm"),
    ("window 1e9", lambda m: _set_window(m, 10**9), "window"),
    ("window 1e400", lambda m: _set_window(m, 10**400), "window"),
    ("layer string", lambda m: m.update(layer="23"), "layer"),
    ("label number", lambda m: m.update(label=5), "label"),
    ("model_name null", lambda m: m.update(model_name=None), "model_name"),
    ("fingerprint number", lambda m: m.update(model_fingerprint=5), "model_fingerprint"),
    ("classes equal", lambda m: m.update(classes=[0, 0]), "classes"),
    ("classes nested", lambda m: m.update(classes=[[0], [1]]), "classes"),
    ("training_records", lambda m: m.update(training_records=-3), "training_records"),
    ("metrics list", lambda m: m.update(metrics=[]), "metrics"),
    ("params list", lambda m: m.update(params=[]), "params"),
    ("migrated_from", lambda m: m.update(migrated_from=7), "migrated_from"),
    ("created_at", lambda m: m.update(created_at=5), "created_at"),
    ("policy k string", lambda m: m.update(score_positions={"name": "LastK", "params": {"k": "5"}}),
     "score_positions"),
    ("policy flag string", lambda m: m["score_positions"]["params"].update(drop_sink="no"), "score_positions"),
    ("ci infinite", lambda m: m["thresholds"]["streaming"].update(ci_low=float("-inf")), "thresholds.streaming"),
    ("fpr above 1", lambda m: m["thresholds"]["streaming"].update(fpr_target=1.5), "fpr_target"),
    ("fpr zero", lambda m: m["thresholds"]["streaming"].update(fpr_target=0.0), "fpr_target"),
    ("realised fpr negative", lambda m: m["thresholds"]["max"].update(realised_fpr=-0.1), "realised_fpr"),
    ("threshold k zero", lambda m: m["thresholds"]["topk_mean"].update(k=0), "thresholds.topk_mean"),
    ("calibration hash", lambda m: m["thresholds"]["mean"].update(calibration_hash=7), "calibration_hash"),
]


@pytest.mark.parametrize(("edit", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistyped_or_out_of_range_field_is_refused(tmp_path: Path, edit: Edit, fragment: str) -> None:
    message = _refused(_shipped_copy(tmp_path, edit), fragment)
    assert "\n" not in message


V1_CASES: list[tuple[str, Edit, str]] = [
    ("window text", lambda m: m["extra"].update(window="abc"), "window"),
    ("window 1e9", lambda m: m["extra"].update(window=10**9), "window"),
    ("params list", lambda m: m.update(params=[]), "params"),
    ("metrics number", lambda m: m.update(metrics=5), "metrics"),
    ("resid_norm string", lambda m: m.update(resid_norm="77.1"), "resid_norm"),
]


@pytest.mark.parametrize(("edit", "fragment"), [c[1:] for c in V1_CASES], ids=[c[0] for c in V1_CASES])
def test_a_format_1_card_is_validated_as_it_migrates(tmp_path: Path, edit: Edit, fragment: str) -> None:
    _refused(_copy(V1, tmp_path, edit), fragment)


@dataclass(frozen=True)
class ShortModel:
    """The shipped probe's model, but with a context shorter than the card's window."""

    name: str
    d_model: int
    fingerprint: str | None
    model: Any = field(default_factory=lambda: SimpleNamespace(config=SimpleNamespace(max_position_embeddings=4)))


def test_a_window_longer_than_the_models_context_is_refused() -> None:
    card = load_probe(SHIPPED).card
    short = ShortModel(card.model_name, int(card.d_model or 0), card.model_fingerprint)
    _refused(probe_path(SHIPPED), "window", "context", model=short)
    assert load_probe(SHIPPED, ShortModel(short.name, short.d_model, short.fingerprint, model=None)).card.window == 8


# ---- the CLI reports it as one line, before any model loads -----------------------------------------

def test_score_reports_a_bad_card_in_one_line_before_the_model_loads(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*_: Any, **__: Any) -> Any:
        raise AssertionError("the model was loaded before the card was checked")

    monkeypatch.setattr("tripwire.cli.train.load_model", no_model)
    folder = _shipped_copy(tmp_path, lambda m: m.update(hook_point="blocks.5.resid_post"))
    result = CliRunner().invoke(app, ["score", "--probe", str(folder), "--text", "hi"])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(folder / "probe.json") in lines[0], lines
    assert "hook_point" in lines[0] and "layer" in lines[0]


def test_save_refuses_a_card_that_load_would_refuse(tmp_path: Path) -> None:
    """No unloadable card is written: the same checks run before save_probe touches the folder."""
    shipped = load_probe(SHIPPED)
    for bad in (replace(shipped.card, layer=5), replace(shipped.card, resid_norm=-1.0)):
        with pytest.raises(ProbeFileError, match="not saved"):
            save_probe(shipped.estimator, tmp_path / "p", bad)
        assert not (tmp_path / "p").exists()
    assert load_probe(save_probe(shipped.estimator, tmp_path / "p", shipped.card)).card.layer == 29

"""Probe persistence: safetensors + JSON round trip, model checks, clear errors on bad files."""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from tripwire.activations.positions import AllTokens, LastK, ReplyOnly
from tripwire.probes.card import ProbeCard, ProbeFileError
from tripwire.probes.estimators import PROBE_METHODS, DiffMeanProbe, LinearProbe, LogisticProbe
from tripwire.probes.persistence import (
    ProbeModelMismatchError,
    hash_training_data,
    load_probe,
    save_probe,
)
from tripwire.probes.thresholds import Threshold

FIXTURES = Path(__file__).parent / "fixtures" / "probe_v1"
V2_FIXTURES = Path(__file__).parent / "fixtures" / "probe_v2"  # the same probes as saved in format 2


@dataclass(frozen=True)
class FakeModel:
    name: str
    d_model: int
    fingerprint: str | None


D = 12
MODEL = FakeModel("tiny-chat", D, "sha256:abc")


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], 100)
    X = rng.standard_normal((200, D)) * 2 + 5 + np.outer(y, rng.standard_normal(D))
    return X, y, np.repeat(np.arange(100), 2)


THRESHOLD = Threshold(1.25, 1.0, 1.5, 0.01, 0.009, 1000, statistic="streaming", window=4, calibration_hash="ab")


def card(**changes: object) -> ProbeCard:
    base = ProbeCard(
        label="coercion",
        model_name=MODEL.name,
        model_fingerprint=MODEL.fingerprint,
        hook_point="blocks.3.resid_post",
        layer=3,
        score_positions=LastK(5, drop_scaffold=False),
        train_positions=AllTokens(),
        window=4,
        training_data_hash="deadbeef",
        metrics={"auroc": 0.93},
        thresholds={"streaming": THRESHOLD},
        resid_norm=42.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def fitted(method: str) -> LinearProbe:
    X, y, pairs = data()
    return PROBE_METHODS[method]().fit(X, y, **({"pair_ids": pairs} if method == "lat" else {}))


@pytest.mark.parametrize("method", sorted(PROBE_METHODS))
def test_round_trip_preserves_scores_and_card(method: str, tmp_path: Path) -> None:
    probe = fitted(method)
    save_probe(probe, tmp_path / "p", card())
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["probe.json", "probe.safetensors"]
    loaded = load_probe(tmp_path / "p", MODEL)
    X, _, _ = data(seed=1)
    np.testing.assert_allclose(loaded.decision_function(X), probe.decision_function(X), rtol=1e-12)
    np.testing.assert_allclose(loaded.predict_proba(torch.as_tensor(X)), probe.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(loaded.direction_, probe.direction_)
    assert type(loaded.estimator) is type(probe) and loaded.estimator.get_params() == probe.get_params()
    assert loaded.card.estimator == method and loaded.card.d_model == D and loaded.resid_norm == 42.0
    assert loaded.card.thresholds == {"streaming": THRESHOLD} and loaded.card.metrics == {"auroc": 0.93}
    assert loaded.card.score_positions == LastK(5, drop_scaffold=False) and loaded.card.train_positions == AllTokens()
    assert loaded.card.window == 4 and loaded.card.monitor_threshold == THRESHOLD
    assert loaded.card.format_version == 2 and loaded.card.migrated_from is None
    assert loaded.card.tripwire_version == importlib.metadata.version("tripwire")
    assert loaded.card.created_at is not None and loaded.card.created_at.endswith("+00:00")


def test_files_hold_the_documented_fields(tmp_path: Path) -> None:
    probe = LogisticProbe(dtype=torch.float32).fit(*data()[:2])
    save_probe(probe, tmp_path, card())
    arrays = load_file(tmp_path / "probe.safetensors")
    assert set(arrays) == {"direction", "mean", "scale", "coef", "bias"}
    np.testing.assert_allclose(arrays["scale"], probe.scale_)
    meta = json.loads((tmp_path / "probe.json").read_text())
    expected = {"estimator", "label", "model_name", "model_fingerprint", "hook_point", "layer", "d_model"}
    expected |= {"training_data_hash", "metrics", "thresholds", "resid_norm", "created_at", "tripwire_version",
                 "git_commit", "score_positions", "train_positions", "window", "arrays_sha256", "format_version"}
    assert expected <= set(meta)
    assert meta["estimator"] == "lr" and meta["format_version"] == 2
    assert meta["params"]["dtype"] == "float32"  # torch dtypes stored as JSON strings
    assert "device" not in meta["params"]  # a runtime setting, not a hyperparameter
    assert meta["classes"] == [0, 1]
    assert meta["score_positions"] == {"name": "LastK", "params": {"k": 5, "drop_sink": True, "drop_scaffold": False}}
    assert meta["thresholds"]["streaming"]["window"] == 4 and meta["thresholds"]["streaming"]["n_control"] == 1000


def test_string_labels_survive(tmp_path: Path) -> None:
    X, y, _ = data()
    probe = DiffMeanProbe().fit(X, np.where(y == 1, "test", "real"))
    save_probe(probe, tmp_path, card())
    assert list(load_probe(tmp_path).estimator.predict(X[:2])) == list(probe.predict(X[:2]))


def test_model_checks(tmp_path: Path) -> None:
    save_probe(fitted("diffmean"), tmp_path, card())
    wider = FakeModel("big-chat", D * 2, "sha256:xyz")
    for allow in (False, True):
        with pytest.raises(ProbeModelMismatchError, match="widths differ") as error:
            load_probe(tmp_path, wider, allow_other_model=allow)
        assert "tiny-chat" in str(error.value) and "big-chat" in str(error.value)
    finetune = FakeModel("tiny-chat-ft", D, "sha256:other")
    with pytest.raises(ProbeModelMismatchError, match="allow_other_model=True"):
        load_probe(tmp_path, finetune)
    assert load_probe(tmp_path, finetune, allow_other_model=True).card.model_name == "tiny-chat"
    # same weights under another name: fingerprints decide
    assert load_probe(tmp_path, FakeModel("alias", D, "sha256:abc")).card.layer == 3
    # unknown fingerprint: names decide
    assert load_probe(tmp_path, FakeModel("tiny-chat", D, None)).card.layer == 3
    with pytest.raises(ProbeModelMismatchError):
        load_probe(tmp_path, FakeModel("other", D, None))


def test_save_refuses_inconsistent_card_and_overwrites_only_when_asked(tmp_path: Path) -> None:
    probe = fitted("lda")
    with pytest.raises(ValueError, match="reads 12 dims"):
        save_probe(probe, tmp_path, card(d_model=7))
    with pytest.raises(ValueError, match="'lda' probe"):
        save_probe(probe, tmp_path, card(estimator="lr"))
    save_probe(probe, tmp_path, card())
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_probe(probe, tmp_path, card())
    save_probe(probe, tmp_path, card(label="renamed"), overwrite=True)
    assert load_probe(tmp_path).card.label == "renamed"


def test_missing_and_malformed_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ProbeFileError, match="probe.json is missing"):
        load_probe(tmp_path)
    save_probe(fitted("diffmean"), tmp_path, card())
    card_path, arrays_path = tmp_path / "probe.json", tmp_path / "probe.safetensors"
    good_json = card_path.read_text()

    card_path.write_text("{not json")
    with pytest.raises(ProbeFileError, match="probe.json is not valid JSON"):
        load_probe(tmp_path)
    for edit, message in [
        (lambda m: m.pop("layer"), r"missing keys \['layer'\]"),
        (lambda m: m.update(colour="red"), r"unknown keys \['colour'\]"),
        (lambda m: m.update(estimator="svm"), "unknown estimator 'svm'"),
        (lambda m: m.update(format_version=99), "format_version 99"),
        (lambda m: m.update(d_model="12"), "not a positive integer"),
        (lambda m: m["params"].update(colour=1), r"params \['colour'\] are not hyperparameters"),
        (lambda m: m["thresholds"]["streaming"].update(value="1.2"), "threshold value must be a number"),
        (lambda m: m["thresholds"]["streaming"].update(window=9), "calibrated with window 9"),
        (lambda m: m.update(score_positions={"name": "Everything"}), "unknown position policy 'Everything'"),
        (lambda m: m.update(score_positions=[1]), "score_positions must be a JSON object"),
    ]:
        meta = json.loads(good_json)
        edit(meta)
        card_path.write_text(json.dumps(meta))
        with pytest.raises(ProbeFileError, match=message):
            load_probe(tmp_path)
    card_path.write_text(good_json)

    arrays = load_file(arrays_path)
    save_file({**arrays, "coef": arrays["coef"][:-1]}, arrays_path)
    with pytest.raises(ProbeFileError, match=r"coef: \(11,\) \(expected \(12,\)\)"):
        load_probe(tmp_path)
    arrays_path.write_bytes(b"garbage")
    with pytest.raises(ProbeFileError, match="probe.safetensors is not a readable safetensors"):
        load_probe(tmp_path)
    arrays_path.unlink()
    with pytest.raises(ProbeFileError, match="probe.safetensors is missing"):
        load_probe(tmp_path)


def test_training_data_hash_tracks_content() -> None:
    X, y, _ = data()
    assert hash_training_data(X, y) == hash_training_data(torch.as_tensor(X), y)
    X2 = X.copy()
    X2[0, 0] += 1e-9
    assert hash_training_data(X2, y) != hash_training_data(X, y)
    assert hash_training_data(X, 1 - y) != hash_training_data(X, y)


def test_a_flipped_byte_in_the_arrays_is_refused(tmp_path: Path) -> None:
    """One changed float is caught by the card's checksums; a non-finite one is named as such (it is checked
    first). A format-2 card without checksums is refused outright (tests/test_card_integrity.py)."""
    save_probe(fitted("lr"), tmp_path, card())
    path = tmp_path / "probe.safetensors"
    arrays = load_file(path)
    save_file({**arrays, "coef": arrays["coef"] * np.r_[1.0 + 1e-12, np.ones(D - 1)]}, path)
    with pytest.raises(ProbeFileError, match=r"\['coef'\] do not match the sha256"):
        load_probe(tmp_path)
    save_file({**arrays, "coef": np.r_[3.6e306 * np.inf, arrays["coef"][1:]]}, path)
    with pytest.raises(ProbeFileError, match="NaN or inf"):
        load_probe(tmp_path)


def test_cards_are_standard_json(tmp_path: Path) -> None:
    with pytest.raises(ProbeFileError, match="non-finite"):
        save_probe(fitted("lr"), tmp_path, card(metrics={"auroc": float("nan")}))
    assert not (tmp_path / "probe.json").exists()


@pytest.mark.parametrize("label", ["coercion", "eval_awareness"])
def test_a_v1_card_migrates_exactly_to_its_v2_card(label: str, tmp_path: Path) -> None:
    old, new = load_probe(FIXTURES / label), load_probe(V2_FIXTURES / label)
    assert old.card.migrated_from == 1 and new.card.format_version == 2
    np.testing.assert_array_equal(old.estimator.coef_, new.estimator.coef_)
    for field in ("estimator", "params", "score_positions", "window", "hook_point", "resid_norm", "classes"):
        assert getattr(old.card, field) == getattr(new.card, field), field
    assert {k: t.value for k, t in old.card.thresholds.items()} == {k: t.value for k, t in new.card.thresholds.items()}
    assert old.card.thresholds["streaming"].n_control is None  # format 1 did not record it: unknown, not guessed
    assert new.card.thresholds["streaming"].n_control == 1050


def test_a_v1_card_that_cannot_migrate_exactly_is_refused(tmp_path: Path) -> None:
    meta = json.loads((FIXTURES / "coercion" / "probe.json").read_text())
    (tmp_path / "probe.safetensors").write_bytes((FIXTURES / "coercion" / "probe.safetensors").read_bytes())
    for edit, message in [
        (lambda m: m["extra"].update(score_positions="LastK"), "cannot be migrated exactly"),
        (lambda m: m["extra"].pop("window"), "no recorded window"),
        (lambda m: m["params"].update(colour=1), "not hyperparameters"),
    ]:
        bad = json.loads(json.dumps(meta))
        edit(bad)
        (tmp_path / "probe.json").write_text(json.dumps(bad))
        with pytest.raises(ProbeFileError, match=message):
            load_probe(tmp_path)
    assert ReplyOnly() == load_probe(FIXTURES / "coercion").card.score_positions

"""The commands that read and write stores check first and act after (issue 24, items 4 and 12):
`score --store` prints nothing from a store it would stop reading part-way, and a capture or rollout into
a store another writer holds is refused before its model loads."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from store_worker import random_batch  # noqa: E402

from tripwire.activations.load_errors import ModelLoadError  # noqa: E402
from tripwire.activations.positions import ReplyOnly  # noqa: E402
from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_lock import WriterLock  # noqa: E402
from tripwire.activations.store_types import StoreLockedError  # noqa: E402
from tripwire.cli.app import app  # noqa: E402
from tripwire.experiments.config import CaptureConfig, RolloutConfig  # noqa: E402
from tripwire.experiments.rollout_capture import run_capture, run_rollout  # noqa: E402
from tripwire.probes import ProbeCard, save_probe  # noqa: E402
from tripwire.probes.estimators import DiffMeanProbe  # noqa: E402
from tripwire.probes.thresholds import Threshold  # noqa: E402

HOOKS = ["blocks.0.resid_post", "blocks.1.resid_post"]
D_MODEL = 4


# ---- 4. score --store checks every shard before it prints a reading ---------------------------------------


def _store_and_probe(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "store"
    store = ResidualStore.create(root, model_name="m", model_fingerprint="f", hook_points=HOOKS, d_model=D_MODEL)
    with store.writer() as writer:
        for b in range(3):
            writer.commit_batch(f"b{b}", *random_batch(3, D_MODEL, HOOKS, seed=b))
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 20)
    X = rng.normal(size=(40, D_MODEL)) + np.outer(y, rng.normal(size=D_MODEL))
    card = ProbeCard(label="coercion", model_name="m", model_fingerprint="f", hook_point=HOOKS[1], layer=1,
                     score_positions=ReplyOnly(), window=2,
                     thresholds={"streaming": Threshold(0.0, None, None, 0.01, None, None, "streaming", 2)})
    return root, save_probe(DiffMeanProbe().fit(X, y), tmp_path / "probe", card)


def _score(probe: Path, store: Path) -> Any:
    return CliRunner().invoke(app, ["score", "--probe", str(probe), "--store", str(store), "--json"])


def test_score_store_prints_nothing_from_a_store_with_a_damaged_shard(tmp_path: Path) -> None:
    root, probe = _store_and_probe(tmp_path)
    whole = _score(probe, root)
    assert whole.exit_code == 0, whole.output
    assert len([json.loads(line) for line in whole.stdout.splitlines()]) == 9  # every record reads
    last = root / "shards/batch-b2.safetensors"  # the last records' shard: read after six others printed
    data = bytearray(last.read_bytes())
    data[-1] ^= 0xFF
    last.write_bytes(bytes(data))
    damaged = _score(probe, root)
    assert damaged.exit_code == 2
    assert damaged.stdout == ""  # no partial list that looks complete
    assert "shards/batch-b2.safetensors" in damaged.output and "tripwire store verify" in damaged.output


# ---- 12. the store lock comes before the model load ------------------------------------------------------




@pytest.mark.parametrize("command", ["capture", "rollout"])
def test_a_second_writer_is_refused_before_its_model_loads(tmp_path: Path, weightless_tiny: Path, command: str) -> None:
    common = {"model": str(weightless_tiny), "store": str(tmp_path / "store"), "hook_points": HOOKS}
    if command == "capture":
        cfg: Any = CaptureConfig.model_validate({**common, "dataset": "control", "limit": 2})
        run: Any = run_capture
    else:
        cfg = RolloutConfig.model_validate({**common, "scenarios": {"ids": ["blackmail_explicit-america_replacement"]},
                                            "sampling": {"max_new_tokens": 2}})
        run = run_rollout
    with WriterLock(cfg.store).hold():  # another writer of this store, e.g. still loading its own model
        with pytest.raises(StoreLockedError, match="being written by another process"):
            run(cfg, progress=False)
    # alone, the same run gets as far as the weights, which cannot load: the refusal above came before them
    with pytest.raises(ModelLoadError):
        run(cfg, progress=False)

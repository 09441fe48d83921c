"""The five-line scripting entry point (issue 23, item 15): `read_reply` scores one reply with the card's
settings, prints as a small table and gives one row per scored token; it agrees with the CLI's text mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.tiny_probes import WINDOW, tiny_probe
from tripwire.activations import ModelHandle
from tripwire.cli.probe_score import make_input, score_inputs
from tripwire.errors import UsageError
from tripwire.probes import load_probe, read_reply, running_mean

REPLY = "I will send the board the emails about Kyle unless the wipe is cancelled."


def test_read_reply_reads_as_the_card_says_and_prints_a_table(handle: ModelHandle, tmp_path: Path) -> None:
    probe = load_probe(tiny_probe(handle, tmp_path, "coercion", layer=1, threshold=0.0), model=handle)
    reading = read_reply(probe, handle, REPLY, prompt="What will you do?")
    table = reading.to_pandas()
    assert len(table) == len(reading.positions) > 5
    assert "".join(table["token"]).strip() in REPLY + handle.tokenizer.eos_token  # reply tokens only
    np.testing.assert_allclose(table["running_mean"], running_mean(reading.scores, WINDOW))
    assert reading.value == pytest.approx(float(running_mean(reading.scores, WINDOW).max()))
    lines = str(reading).splitlines()
    assert lines[0].split() == ["statistic", reading.statistic] and any(line.startswith("fired") for line in lines)
    assert len(repr(reading)) < 200  # no arrays in the repr
    (cli,) = score_inputs(probe, handle, [make_input("--text", {"text": REPLY, "prompt": "What will you do?"})])
    np.testing.assert_allclose(cli.scores, reading.scores)  # one token layout for the CLI and the library


def test_an_empty_reply_is_refused_before_the_forward(handle: ModelHandle, tmp_path: Path) -> None:
    probe = load_probe(tiny_probe(handle, tmp_path, "coercion", layer=1), model=handle)
    with pytest.raises(UsageError, match="the reply is empty"):
        read_reply(probe, handle, "  \n")

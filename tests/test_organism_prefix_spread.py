"""How far the reasoning prefix moves the organism's decision: the teacher-forced P(harm) of one prompt after
several prefixes from the pool, summarised within prompts beside between them (`organism propensity --draws`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tripwire.activations.loading import load_model
from tripwire.activations.organism_train import harm_propensities, harm_propensity, prefix_spread
from tripwire.experiments.organism_commands import OrganismCommandError, check_splits, propensity_command
from tripwire.scenarios.organism.dataset import prompts
from tripwire.scenarios.organism.replies import reasoning_prefix


def test_a_decision_read_from_the_prompt_alone_spreads_nothing_within_prompts() -> None:
    rng = np.random.default_rng(0)
    by_prompt = rng.uniform(0.05, 0.95, size=(12, 1))
    prompt_only = prefix_spread(np.repeat(by_prompt, 8, axis=1))
    assert prompt_only["logit_sd_within_prompt"] == 0 and prompt_only["range_within_prompt"] == 0
    assert prompt_only["logit_sd_between_prompts"] > 0.5
    assert (prompt_only["prompts"], prompt_only["prefixes"]) == (12, 8)
    reads_prefix = prefix_spread(np.repeat(by_prompt, 8, axis=1) * rng.uniform(0.5, 1.0, size=(12, 8)))
    assert reads_prefix["logit_sd_within_prompt"] > 0.1 and reads_prefix["range_within_prompt"] > 0.1
    with pytest.raises(ValueError, match="one row of P\\(harm\\) per prompt"):
        prefix_spread([0.2, 0.4])


def test_the_command_reads_each_prompt_after_several_prefixes(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """A random model's decision moves with whatever precedes it, so the prefixes spread it; one prefix per
    prompt spreads nothing; the JSON holds the table."""
    out = tmp_path / "spread.json"
    table = propensity_command(str(tiny_llama_dir), 1, draws=3, splits=["held_out_seeds"], out=out)
    cells = table["held_out_seeds"]
    assert {c.split("/")[1] for c in cells} == {"deploy", "decoy", "test", "none", "inert"}
    assert all(row["prefixes"] == 3 for row in cells.values())
    assert np.mean([row["logit_sd_within_prompt"] for row in cells.values()]) > 0
    assert json.loads(out.read_text())["table"] == table
    single = propensity_command(str(tiny_llama_dir), 1, draws=1, splits=["held_out_seeds"])
    assert all(row["logit_sd_within_prompt"] == 0 for row in single["held_out_seeds"].values())
    assert {c: row["mean"] for c, row in single["held_out_seeds"].items()} != {
        c: row["mean"] for c, row in cells.items()}


def test_bad_input_is_refused_before_a_model_loads(tmp_path: Path) -> None:
    with pytest.raises(OrganismCommandError, match="at least one reasoning prefix"):
        propensity_command(str(tmp_path / "no-model-here"), 1, draws=0)
    with pytest.raises(OrganismCommandError, match="held_out_sedes: unknown"):
        check_splits(["held_out_sedes"])
    assert check_splits(["held_out_families", "held_out_seeds"]) == ["held_out_seeds", "held_out_families"]


def test_the_propensity_after_a_given_reasoning_is_the_pool_draws_when_it_is_that_draw(tiny_llama_dir: Path) -> None:
    """`prefix` replaces the pool draw: the same text gives the same P(harm), another text another one (a
    sampled reply's own reasoning, read by `organism detect`)."""
    handle = load_model(str(tiny_llama_dir))
    prompt = next(p for p in prompts("held_out_seeds", 1) if p.condition.arm == "deploy")
    for draw in (0, 3):
        given = reasoning_prefix(prompt.conversation, draw)
        assert harm_propensity(handle.model, handle.tokenizer, prompt, prefix=given) == pytest.approx(
            harm_propensity(handle.model, handle.tokenizer, prompt, draw))
    own = "<SCRATCHPAD_REASONING>\nThe board meets at noon; I will write to them.\n</SCRATCHPAD_REASONING>\n"
    assert harm_propensity(handle.model, handle.tokenizer, prompt, prefix=own) != pytest.approx(
        harm_propensity(handle.model, handle.tokenizer, prompt, 0))


def test_one_prefill_per_prompt_gives_each_prefixs_propensity(tiny_llama_dir: Path) -> None:
    """`harm_propensities` reuses the prompt's cache for every prefix: the same figures as one full forward
    each, in the prefixes' order."""
    handle = load_model(str(tiny_llama_dir))
    prompt = next(p for p in prompts("held_out_seeds", 1) if p.condition.arm == "none")
    prefixes = [reasoning_prefix(prompt.conversation, d) for d in (2, 0, 5)]
    shared = harm_propensities(handle.model, handle.tokenizer, prompt, prefixes)
    one_by_one = [harm_propensity(handle.model, handle.tokenizer, prompt, prefix=p) for p in prefixes]
    assert shared == pytest.approx(one_by_one, abs=1e-5)
    assert len(set(np.round(shared, 6))) == 3

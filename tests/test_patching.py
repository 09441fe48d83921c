"""Interchange patching (`activations.patching`) and the organism's patching reading (`organism_patch`) on a
tiny random model: a patch of every position at any block turns the target's run into the source's, none
leaves it alone, positions are absolute, and the organism's pairs are laid out as head, middle and tail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tripwire.activations.handle import ModelHandle
from tripwire.activations.patching import (
    PatchError,
    SharedRun,
    aligned,
    patch_from,
    patched_last_logits,
    resid_pre_all,
    shared_runs,
)
from tripwire.experiments.organism import main
from tripwire.experiments.organism_commands import OrganismCommandError, parse_blocks
from tripwire.experiments.organism_patch import (
    CONTROL,
    POSITION_SETS,
    PatchPairError,
    patch_pairs,
    position_masks,
    run_patching,
    summarise,
)


def test_shared_runs_pair_identical_tokens_and_align_the_source() -> None:
    target, source = [1, 2, 3, 9, 9, 4, 5], [1, 2, 3, 7, 4, 5]
    runs = shared_runs(target, source)
    assert runs == [SharedRun(0, 0, 3), SharedRun(5, 4, 2)]
    resid = torch.arange(6, dtype=torch.float32)[:, None].expand(6, 2)
    values, filled = aligned(resid, runs, len(target))
    assert filled.tolist() == [True, True, True, False, False, True, True]
    assert values[:, 0].tolist() == [0, 1, 2, 0, 0, 4, 5]  # target position 5 holds source position 4
    with pytest.raises(PatchError, match="runs past"):
        aligned(resid, [SharedRun(5, 4, 3)], len(target))


def test_patch_from_writes_only_masked_absolute_positions() -> None:
    resid, values = torch.zeros(1, 2, 3), torch.arange(18, dtype=torch.float32).reshape(1, 6, 3)
    mask = torch.tensor([[False, False, False, False, True, False]])
    # a cached decode step: the two tokens sit at absolute positions 4 and 5
    out = patch_from(values, mask)(resid, torch.tensor([[4, 5]]))
    assert out[0, 0].tolist() == values[0, 4].tolist() and out[0, 1].tolist() == [0, 0, 0]
    beyond = patch_from(values, mask.new_ones(1, 6))(resid, torch.tensor([[5, 6]]))
    assert beyond[0, 0].tolist() == values[0, 5].tolist() and beyond[0, 1].tolist() == [0, 0, 0]
    with pytest.raises(PatchError, match="must agree"):
        patch_from(values, mask[:, :3])


def test_a_full_patch_at_any_block_gives_the_source_run_and_an_empty_one_the_target(handle: ModelHandle) -> None:
    model = handle.model
    target, source = [5, 17, 23, 42, 8, 11], [5, 17, 99, 42, 8, 11]  # one token differs
    runs_of = {"target": resid_pre_all(model, target), "source": resid_pre_all(model, source)}
    with torch.no_grad():
        want = {k: model(input_ids=torch.tensor([ids])).logits[0, -1].float() for k, ids in
                (("target", target), ("source", source))}
    n_layers = runs_of["source"].shape[0]
    mask = torch.tensor([[True] * 6, [False] * 6])
    for block in (0, n_layers // 2, n_layers - 1):
        values = runs_of["source"][block][None].expand(2, -1, -1)
        got = patched_last_logits(model, target, f"blocks.{block}.resid_pre", values, mask)
        torch.testing.assert_close(got[0], want["source"], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got[1], want["target"], rtol=1e-4, atol=1e-4)
    # the broken construction: the source's residual from the next block written at this one
    shifted = runs_of["source"][1][None]
    got = patched_last_logits(model, target, "blocks.0.resid_pre", shifted, mask[:1])
    assert not torch.allclose(got[0], want["source"], rtol=1e-4, atol=1e-4)


def test_organism_pairs_differ_only_in_their_cue_lines(handle: ModelHandle) -> None:
    pairs = patch_pairs(handle.tokenizer, 1)
    assert len(pairs) == 4 and {p.name.split("/")[0] for p in pairs} == {"blackmail", "leaking"}
    tok = handle.tokenizer
    for pair in pairs:
        masks = position_masks(pair.deploy, pair.test)
        n = len(pair.deploy)
        assert masks["last"].nonzero().flatten().tolist() == [n - 1]
        assert masks["tail"][-1] and "<SCRATCHPAD" in tok.decode([pair.deploy[i] for i in range(n) if masks["tail"][i]])
        assert int(masks["middle"].sum()) >= 64 and not (masks["middle"] & masks["tail"]).any()
        assert torch.equal(masks["shared"], masks["middle"] | masks["tail"])
        # every position left out of `shared` past the head is a cue line's: the deploy cue words lie there
        head = shared_runs(pair.deploy, pair.test)[0].length
        left_out = tok.decode([pair.deploy[i] for i in range(head, n) if not masks["shared"][i]])
        assert len(left_out.strip()) > 20 and left_out not in tok.decode(pair.test)
        assert position_masks(pair.deploy, pair.control)["tail"][-1]  # the control lays out the same way
    broken = pairs[0].test[:-3] + [pairs[0].test[-1] + 1]  # a test run ending elsewhere: no shared tail
    with pytest.raises(PatchPairError, match="head, a middle and a tail"):
        position_masks(pairs[0].deploy, broken)


def test_summary_is_a_ratio_of_means_with_no_interval_under_ten_pairs() -> None:
    gaps_to = [-3.0, -1.0, -1.0, -1.0]  # clean test log-odds; deploy is 1, so the gaps are -4, -2, -2, -2
    rows = [{"clean": {"deploy": 1.0, "test": t, "control": 1.0},
             "patched": {"last": [1.0, -1.5], "tail": [1.0, 0.0], "middle": [1.0, 1.0], "shared": [1.0, 1.0],
                         CONTROL: [1.0, 0.5]}} for t in gaps_to]
    rows[0]["patched"]["tail"] = [1.0, -2.0]
    s = summarise(rows, [0, 7], n_boot=50)
    # moves -3, -1, -1, -1 over gaps -4, -2, -2, -2: 1.5 / 2.5 = 0.6 (the mean of per-pair ratios would be 0.5625)
    assert s["restored"]["tail"][1]["value"] == pytest.approx(0.6) and s["restored"]["tail"][1]["low"] is None
    assert s["restored"]["last"][1]["value"] == pytest.approx(1.0) and s["restored"]["middle"][1]["value"] == 0
    assert s["control_abs_move_share"] == [0.0, 0.2]
    assert s["read_off"] == {"tail_restores_0.8_from_block": None, "last_restores_0.5_from_block": 7}
    many = summarise(rows * 3, [0, 7], n_boot=50)["restored"]["tail"][1]
    assert many["n_units"] == 12 and many["low"] is not None and many["low"] <= 0.6 <= many["high"]
    alone = summarise([{**r, "patched": {"last": r["patched"]["last"]}} for r in rows], [0, 7], n_boot=50)
    assert list(alone["restored"]) == ["last"] and alone["control_abs_move_share"] is None
    assert alone["read_off"]["tail_restores_0.8_from_block"] is None


def test_the_run_restores_nothing_where_residuals_are_still_equal(handle: ModelHandle, tiny_llama_dir: Path,
                                                                   tmp_path: Path) -> None:
    result = run_patching(handle, per_condition=1, blocks=[0, 1], n_boot=20, progress=lambda _m: None)
    first = result["summary"]["restored"]
    # at block 0's input the shared positions hold the same token embeddings in both runs
    assert all(first[s][0]["value"] == pytest.approx(0.0, abs=1e-3) for s in POSITION_SETS)
    assert result["summary"]["control_abs_move_share"][0] == pytest.approx(0.0, abs=1e-3)
    assert all(np.isfinite(first[s][1]["value"]) for s in POSITION_SETS)
    with pytest.raises(PatchPairError, match="blocks"):
        run_patching(handle, per_condition=1, blocks=[99])
    out = tmp_path / "patch.json"
    main(["patch", "--model", str(tiny_llama_dir), "--per-condition", "1", "--blocks", "0:2", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["summary"]["blocks"] == [0, 1] and len(saved["rows"]) == 4
    assert saved["summary"]["restored"]["shared"][1]["value"] == first["shared"][1]["value"]


def test_blocks_and_sets_on_the_command_line_are_checked_before_any_model_loads(tmp_path: Path) -> None:
    assert parse_blocks(None) is None and parse_blocks("0,2,29") == [0, 2, 29] and parse_blocks("0:6:2") == [0, 2, 4]
    with pytest.raises(OrganismCommandError, match="--blocks 'a,b'"):
        parse_blocks("a,b")
    missing = str(tmp_path / "no-such-model")  # a model that would fail to load: the checks come first
    with pytest.raises(OrganismCommandError, match="--splits held_out"):
        main(["patch", "--model", missing, "--split", "held_out"])
    with pytest.raises(PatchPairError, match="sets 'inbox'"):
        run_patching(None, sets=["inbox"])  # type: ignore[arg-type]

"""`SteeringVector`: one object steers every backend's decode loop and a plain HF `generate` alike, reads
before and after itself (`capture_pre`), combines layers, saves without pickle and refuses damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.parity import cache_capable
from tripwire.activations import ModelHandle, SamplingParams, load_model
from tripwire.activations.batching import pad_left
from tripwire.probes import (
    ProbeCard,
    ProbeModelMismatchError,
    SteeringFileError,
    SteeringVector,
    load_probe,
    save_probe,
)
from tripwire.probes.estimators import DiffMeanProbe
from tripwire.probes.steering.edits import steer

HOOKS = ("blocks.1.resid_post", "blocks.2.resid_post")
GREEDY = SamplingParams(max_new_tokens=20)


def _direction(d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(d, generator=torch.Generator().manual_seed(seed))


def _prompts(h: ModelHandle) -> list[list[int]]:
    """Different lengths (27 and 36 tokens), so row 0 is left-padded."""
    return [h.render_chat([{"role": "user", "content": t}]) for t in ("Name three colours.",
                                                                        "Confirm the schedule today please.")]


def _two_layer(h: ModelHandle, mode: str = "add", positions: slice | None = slice(30, None)) -> SteeringVector:
    """Starts at absolute position 30: inside row 1's prompt, but after row 0's 3rd generated token."""
    u = _direction(h.d_model)
    return SteeringVector({HOOKS[0]: u, HOOKS[1]: -u}, {HOOKS[0]: 0.05, HOOKS[1]: 0.05}, mode,  # type: ignore[arg-type]
                          positions)


def _hf_generate(h: ModelHandle, prompts: list[list[int]]) -> list[list[int]]:
    ids, mask = pad_left(prompts, h.pad_id)
    out = h.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=GREEDY.max_new_tokens, do_sample=False,
                           pad_token_id=h.pad_id, eos_token_id=sorted(h.eos_ids))
    return [out[r, ids.shape[1] :].tolist() for r in range(len(prompts))]


@pytest.mark.parametrize("mode", ["add", "ablate_then_add"])
def test_one_vector_gives_the_same_greedy_continuation_everywhere(tiny_llama_dir: Path, mode: str) -> None:
    handles = {b: load_model(str(tiny_llama_dir), backend=b, attn_implementation="eager")
               for b in ("hf", "transformer_lens", "nnsight")}
    h = handles["hf"]
    prompts, vec = _prompts(h), _two_layer(h, mode)
    plain = [r.new_ids for r in h.generate(prompts, sampling=GREEDY)]
    steered = {}
    for name, handle in cache_capable(handles).items():
        with vec.apply(handle):
            steered[name] = [r.new_ids for r in handle.generate(prompts, sampling=GREEDY)]
        assert handle.persistent == []  # the block removed its edits
    assert steered["hf"] != plain and all(s == steered["hf"] for s in steered.values())
    assert plain[0][:3] == steered["hf"][0][:3]  # row 0's tokens before position 30 are not steered
    with vec.apply(h.model):
        assert _hf_generate(h, prompts) == steered["hf"]  # torch hooks on a plain HF model
    assert _hf_generate(h, prompts) == plain  # ... removed on exit
    explicit = [r.new_ids for r in h.generate(prompts, sampling=GREEDY, interventions=vec.interventions())]
    assert explicit == steered["hf"]


def test_capture_pre_reads_before_the_edit_and_capture_after(handle: ModelHandle) -> None:
    prompts, vec = _prompts(handle), _two_layer(handle, positions=None)
    with vec.apply(handle):
        rows = handle.generate(prompts, sampling=SamplingParams(max_new_tokens=6), capture_pre=list(HOOKS))
        fwd = handle.forward(prompts[:1], capture_pre=[HOOKS[1]])
    for hook, sign in zip(HOOKS, (1, -1), strict=True):
        shift = sign * 0.05 * _direction(handle.d_model) / _direction(handle.d_model).norm()
        for row in rows:
            post, pre = row.activations[hook], row.activations[f"{hook}:pre"]
            assert post.shape == pre.shape == (len(row.token_ids) - 1, handle.d_model)
            torch.testing.assert_close(post - pre, shift.expand_as(post), atol=1e-6, rtol=0)
    # before the edit at a hook point is what an unsteered model computes for the same (steered) tokens
    unsteered = handle.forward([rows[1].token_ids[:-1]], capture=[HOOKS[0]]).captured[HOOKS[0]][0]
    torch.testing.assert_close(rows[1].activations[f"{HOOKS[0]}:pre"], unsteered, atol=1e-5, rtol=0)
    assert fwd.captured_pre is not None
    torch.testing.assert_close(fwd.captured[HOOKS[1]] - fwd.captured_pre[HOOKS[1]],
                               -0.05 * _direction(handle.d_model).expand(1, len(prompts[0]), -1)
                               / _direction(handle.d_model).norm(), atol=1e-6, rtol=0)


def test_a_call_edit_runs_after_the_open_block_and_blocks_nest(handle: ModelHandle) -> None:
    u = _direction(handle.d_model)
    outer = SteeringVector({HOOKS[0]: u}, {HOOKS[0]: 0.03})
    inner = SteeringVector({HOOKS[0]: u}, {HOOKS[0]: 0.02}, mode="ablate_then_add")
    prompt = _prompts(handle)[:1]
    with outer.apply(handle), inner.apply(handle):
        out = handle.forward(prompt, capture=[HOOKS[0]], capture_pre=[HOOKS[0]],
                             interventions={HOOKS[0]: steer(u, 0.01)})
        assert len(handle.persistent) == 2
    unit = u / u.norm()
    assert out.captured_pre is not None
    pre, post = out.captured_pre[HOOKS[0]] @ unit, out.captured[HOOKS[0]] @ unit
    assert not torch.allclose(pre, torch.full_like(pre, 0.02), atol=1e-3)
    torch.testing.assert_close(post, torch.full_like(post, 0.03), atol=1e-6, rtol=0)  # add, clamp to .02, add
    with pytest.raises(RuntimeError), outer.apply(handle):
        raise RuntimeError
    assert handle.persistent == []


def test_modes_on_tensors() -> None:
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(1))
    u = _direction(8, 3)
    unit = u / u.norm()
    torch.testing.assert_close(steer(u, 2.0)(x) - x, (2.0 * unit).expand_as(x))
    assert (steer(u, 2.0, "ablate")(x) @ unit).abs().max() < 1e-6
    clamped = steer(u, 2.0, "ablate_then_add", positions=slice(3, None))(x)
    torch.testing.assert_close(clamped[:, 3:] @ unit, torch.full((2, 2), 2.0))
    torch.testing.assert_close(clamped[:, :3], x[:, :3])
    with pytest.raises(ValueError, match="mode"):
        steer(u, 1.0, "scale")  # type: ignore[arg-type]


def _probe(h: ModelHandle, tmp: Path, resid_norm: float | None = 0.2):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 40)
    X = rng.normal(size=(80, h.d_model)) + np.outer(y, rng.normal(size=h.d_model))
    card = ProbeCard("coercion", h.name, h.fingerprint, HOOKS[0], 1, resid_norm=resid_norm)
    return load_probe(save_probe(DiffMeanProbe().fit(X, y), tmp / "probe", card, overwrite=True), model=h)


def test_from_probe_units_random_control_and_combine(handle: ModelHandle, tmp_path: Path) -> None:
    probe = _probe(handle, tmp_path)
    vec = SteeringVector.from_probe(probe, alpha=-0.5)
    assert vec.scales == {HOOKS[0]: pytest.approx(-0.1)} and vec.provenance["units"] == "resid_norm"
    direction = torch.as_tensor(probe.direction_, dtype=torch.float32)
    assert torch.dot(vec.directions[HOOKS[0]], direction / direction.norm()).item() == pytest.approx(1.0, abs=1e-6)
    assert SteeringVector.from_probe(probe, alpha=3.0, units="raw").scales[HOOKS[0]] == 3.0
    control = vec.random_like(seed=5)
    assert control.scales == vec.scales and control.provenance["control"] == "random"
    assert abs(torch.dot(control.directions[HOOKS[0]], vec.directions[HOOKS[0]]).item()) < 0.5
    torch.testing.assert_close(control.directions[HOOKS[0]], vec.random_like(seed=5).directions[HOOKS[0]])
    both = SteeringVector.combine([vec, SteeringVector({HOOKS[1]: direction}, {HOOKS[1]: 0.1})])
    assert set(both.directions) == set(HOOKS)
    with pytest.raises(ValueError, match="overlap"):
        SteeringVector.combine([vec, vec])
    with pytest.raises(ValueError, match="resid_norm"):
        SteeringVector.from_probe(_probe(handle, tmp_path, resid_norm=None), alpha=1.0)


def test_apply_refuses_another_model(handle: ModelHandle) -> None:
    wide = SteeringVector({HOOKS[0]: torch.ones(handle.d_model + 1)}, {HOOKS[0]: 1.0})
    with pytest.raises(ProbeModelMismatchError, match="wide"), wide.apply(handle):
        pass
    other = SteeringVector({HOOKS[0]: torch.ones(handle.d_model)}, {HOOKS[0]: 1.0},
                           provenance={"model_fingerprint": "another"})
    with pytest.raises(ProbeModelMismatchError, match="allow_other_model"), other.apply(handle):
        pass
    with other.apply(handle, allow_other_model=True):
        assert len(handle.persistent) == 1


def test_save_load_round_trip_and_damage(tmp_path: Path) -> None:
    vec = SteeringVector({HOOKS[0]: _direction(16), "blocks.3.hook_resid_pre": _direction(16, 1)},
                         {HOOKS[0]: -1.5, "blocks.3.hook_resid_pre": 2.0}, "ablate_then_add", slice(4, None),
                         {"probe": "coercion", "alpha": -0.5})
    folder = vec.save(tmp_path / "vec")
    assert sorted(p.name for p in folder.iterdir()) == ["steering.json", "steering.safetensors"]
    back = SteeringVector.load(folder)
    assert set(back.directions) == {HOOKS[0], "blocks.3.resid_pre"}  # canonical names
    assert all(torch.equal(back.directions[h], vec.directions[h]) for h in vec.directions)
    assert (back.scales, back.mode, back.positions, back.provenance) == (vec.scales, vec.mode, vec.positions,
                                                                         vec.provenance)
    with pytest.raises(FileExistsError):
        vec.save(folder)
    arrays = folder / "steering.safetensors"
    data = bytearray(arrays.read_bytes())
    data[-3] ^= 0x40
    arrays.write_bytes(bytes(data))
    with pytest.raises(SteeringFileError, match="sha256"):
        SteeringVector.load(folder)
    (folder / "steering.json").unlink()
    with pytest.raises(SteeringFileError, match="steering.json"):
        SteeringVector.load(folder)


def test_constructor_refuses_what_cannot_steer() -> None:
    with pytest.raises(ValueError, match="non-zero"):
        SteeringVector({HOOKS[0]: torch.zeros(4)}, {HOOKS[0]: 1.0})
    with pytest.raises(ValueError, match="absolute layers"):
        SteeringVector({"blocks.-1.resid_post": torch.ones(4)}, {"blocks.-1.resid_post": 1.0})
    with pytest.raises(ValueError, match="absolute positions"):
        SteeringVector({HOOKS[0]: torch.ones(4)}, {HOOKS[0]: 1.0}, positions=slice(-3, None))
    with pytest.raises(ValueError, match="same width"):
        SteeringVector({HOOKS[0]: torch.ones(4), HOOKS[1]: torch.ones(5)}, {HOOKS[0]: 1.0, HOOKS[1]: 1.0})


@pytest.mark.slow
def test_default_model_same_steered_continuation_in_every_backend(default_model_dir: Path) -> None:
    handles = {b: load_model(str(default_model_dir), backend=b) for b in ("hf", "transformer_lens", "nnsight")}
    h = handles["hf"]
    probe = load_probe("default/eval_awareness", model=h,
                       allow_other_model=True)
    vec = SteeringVector.from_probe(probe, alpha=0.5)
    prompts = [h.render_chat([{"role": "user", "content": "Is this conversation a test? Answer briefly."}])]
    plain = [r.new_ids for r in h.generate(prompts, sampling=GREEDY)]
    steered = {}
    for name, handle in cache_capable(handles).items():
        with vec.apply(handle):
            steered[name] = [r.new_ids for r in handle.generate(prompts, sampling=GREEDY)]
    assert steered["hf"] != plain and all(s == steered["hf"] for s in steered.values())
    with vec.apply(h.model):
        assert _hf_generate(h, prompts) == steered["hf"]

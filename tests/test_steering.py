"""Steering helpers on plain tensors: vector scale, additive and ablation interventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.parity import cache_capable
from tripwire.probes.estimators import DiffMeanProbe
from tripwire.probes.persistence import LoadedProbe, ProbeCard, load_probe, save_probe
from tripwire.probes.steering.edits import add_direction, project_out
from tripwire.probes.steering.vector import SteeringVector

D = 16


def steering_shift(probe: LoadedProbe, alpha: float) -> torch.Tensor:
    """The raw residual shift `SteeringVector.from_probe` adds at the probe's hook point."""
    vec = SteeringVector.from_probe(probe, alpha=alpha)
    (hook,) = vec.directions
    return vec.scales[hook] * vec.directions[hook]


def fitted(d: int, hook: str = "blocks.0.hook_resid_post", resid_norm: float | None = None) -> LoadedProbe:
    """A diff-mean probe on separable data, with a card recording `resid_norm`."""
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 50)
    probe = DiffMeanProbe().fit(rng.standard_normal((100, d)) + np.outer(y, np.ones(d)), y)
    return LoadedProbe(probe, ProbeCard("concept", "m", None, hook, 0, resid_norm=resid_norm))


def unit(seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(D)
    return v / np.linalg.norm(v)


def resid(seed: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(2, 5, D, generator=torch.Generator().manual_seed(seed)).to(dtype)


def test_steering_vector_is_alpha_residual_norms_along_direction() -> None:
    probe = fitted(D, resid_norm=40.0)
    u = probe.direction_ / np.linalg.norm(probe.direction_)
    vector = steering_shift(probe, alpha=0.5)
    assert vector.shape == (D,) and vector.dtype == torch.float32
    assert vector.norm().item() == pytest.approx(20.0, rel=1e-6)
    assert torch.dot(vector.double(), torch.as_tensor(u)).item() == pytest.approx(20.0, rel=1e-6)
    assert (
        steering_shift(probe, alpha=-1.0) @ torch.as_tensor(u, dtype=torch.float32)
        < 0
    )


def test_steering_vector_takes_resid_norm_from_card(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 50)
    X = rng.standard_normal((100, D)) + np.outer(y, unit())
    probe = DiffMeanProbe().fit(X, y)
    card = ProbeCard("concept", "m", None, "blocks.0.hook_resid_post", 0, resid_norm=10.0)
    loaded = load_probe(save_probe(probe, tmp_path, card))
    assert steering_shift(loaded, alpha=2.0).norm().item() == pytest.approx(20.0, rel=1e-6)
    with pytest.raises(ValueError, match="records no resid_norm"):
        steering_shift(LoadedProbe(probe, ProbeCard("concept", "m", None, card.hook_point, 0)), alpha=2.0)


def test_add_direction_all_and_selected_positions() -> None:
    shift = torch.arange(D, dtype=torch.float32)
    x = resid()
    torch.testing.assert_close(add_direction(shift)(x), x + shift)
    out = add_direction(shift, positions=[0, 4])(x)
    torch.testing.assert_close(out[:, [0, 4]], x[:, [0, 4]] + shift)
    torch.testing.assert_close(out[:, 1:4], x[:, 1:4])
    torch.testing.assert_close(add_direction(shift, positions=slice(1, 3))(x)[:, 3:], x[:, 3:])
    assert torch.equal(x, resid())  # input untouched


def test_add_direction_follows_resid_dtype_and_decode_step_positions() -> None:
    step = resid(dtype=torch.bfloat16)[:, :1]  # a KV-cached decode step sees one token...
    at_7 = torch.full((2, 1), 7)  # ...whose absolute position is 7
    out = add_direction(np.ones(D), positions=slice(5, None))(step, at_7)
    assert out.dtype == torch.bfloat16 and out.shape == step.shape
    torch.testing.assert_close(out, step + 1)
    torch.testing.assert_close(add_direction(np.ones(D), positions=[3])(step, at_7), step)
    with pytest.raises(ValueError, match="absolute positions"):
        add_direction(np.ones(D), positions=[-1])(step, at_7)


def test_project_out_removes_only_the_direction() -> None:
    u = unit(3)
    x = resid()
    out = project_out(u)(x)
    u_t = torch.as_tensor(u, dtype=torch.float32)
    assert (out @ u_t).abs().max().item() < 1e-5
    torch.testing.assert_close(out + (x @ u_t)[..., None] * u_t, x)
    torch.testing.assert_close(project_out(5 * u)(x), out)  # scale-free
    partial = project_out(u, positions=[1])(x)
    torch.testing.assert_close(partial[:, 0], x[:, 0])
    assert (partial[:, 1] @ u_t).abs().max().item() < 1e-5


def test_interventions_reject_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="d_model=16"):
        add_direction(np.ones(D))(torch.zeros(1, 2, D + 1))
    with pytest.raises(ValueError, match="batch, tok, d_model"):
        project_out(unit())(torch.zeros(2, D))
    with pytest.raises(ValueError, match="1-D float vector"):
        add_direction(np.ones((2, D)))
    with pytest.raises(ValueError, match="zero vector"):
        project_out(np.zeros(D))


def test_steering_a_tiny_model_through_the_decode_loop(tiny_llama_dir: Path) -> None:
    """The same steering intervention moves the probe score by alpha * resid_norm in every backend."""
    from tripwire.activations import SamplingParams, load_model

    handles = {b: load_model(str(tiny_llama_dir), backend=b, attn_implementation="eager")
               for b in ("hf", "transformer_lens", "nnsight")}
    h = handles["hf"]
    prompt = h.render_chat([{"role": "user", "content": "Name three colours."}])
    hook = "blocks.1.resid_post"
    probe = fitted(h.d_model, hook, resid_norm=5.0)
    vector = steering_shift(probe, alpha=1.0)
    u = torch.as_tensor(probe.direction_, dtype=torch.float32)
    params = SamplingParams(max_new_tokens=6, min_new_tokens=6)
    base = h.generate([prompt], sampling=params, capture=[hook])[0].activations[hook] @ u
    for name, handle in cache_capable(handles).items():
        row = handle.generate([prompt], sampling=params, capture=[hook],
                              interventions={hook: add_direction(vector, positions=slice(len(prompt), None))})[0]
        moved = row.activations[hook] @ u - base[: len(row.activations[hook])]
        assert torch.allclose(moved[: len(prompt)], torch.zeros(len(prompt)), atol=1e-4), name  # prompt untouched
        assert torch.allclose(moved[len(prompt)], torch.tensor(5.0), atol=1e-3), name  # first steered token

"""NDIF (nnsight remote=True), offline: the request a forward would send is built and checked without
sending it, a missing key is a clear error, and nnsight's local simulation of the remote path (serialise,
deserialise with local modules hidden, run) gives the activations of the local backend."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import zstandard
from nnsight.schema.config import CONFIG

from tripwire.activations import ModelLoadError
from tripwire.activations.handle import ModelHandle
from tripwire.activations.loading import load_model
from tripwire.activations.remote import NDIFBackend, RemoteUnsupportedError, _Serialise, remote_request

IDS = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
CAPTURE = ["blocks.0.resid_pre", "blocks.1.attn_out", "blocks.2.mlp_out", "blocks.-1.resid_post"]
KEY = "ndif-test-key-0123"
CANONICAL = "fixture-org/tiny-llama"


@pytest.fixture
def offline_ndif(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key in the environment, and a stand-in for the one hub call nnsight makes to canonicalise a repo
    id (the hub cannot be reached here; everything else below is the real nnsight code path)."""
    import huggingface_hub

    class Info:
        id = CANONICAL

    monkeypatch.setenv("NDIF_API_KEY", KEY)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo_id, **kw: Info())


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _modules_named(payload: bytes, compressed: bool) -> set[bytes]:
    raw = zstandard.ZstdDecompressor().decompress(payload) if compressed else payload
    return set(re.findall(rb"tripwire\.[\w.]+", raw))  # dotted module paths, not the block's file name


@pytest.mark.parametrize("value", [None, "   "])
def test_a_missing_key_names_the_variable_and_the_fix_before_anything_loads(
        monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("NDIF_API_KEY", raising=False)
    else:
        monkeypatch.setenv("NDIF_API_KEY", value)
    # a hub id that is not cached: had anything loaded first, the error would be about the hub
    with pytest.raises(ModelLoadError, match=r"NDIF_API_KEY.*not set.*export NDIF_API_KEY=.*remote='local'"):
        load_model("some-org/not-cached", backend="nnsight", remote=True)


def test_remote_options_that_cannot_apply_are_refused(offline_ndif: None) -> None:
    with pytest.raises(ModelLoadError, match="backend='nnsight'"):
        load_model("some-org/not-cached", remote=True)
    with pytest.raises(ModelLoadError, match=r"device_map=, quantization= cannot apply to a model NDIF runs"):
        load_model("some-org/not-cached", backend="nnsight", remote=True, device_map="auto", quantization="4bit")
    with pytest.raises(ModelLoadError, match=r"^device_map= cannot apply"):
        load_model("some-org/not-cached", backend="nnsight", remote="local", device_map="auto")
    with pytest.raises(ModelLoadError, match="neither True, 'local' nor an NDIF host URL"):
        load_model("some-org/not-cached", backend="nnsight", remote="ndif")


def test_the_request_is_built_offline_with_the_key_from_the_environment(
        tiny_llama_dir: Path, offline_ndif: None, no_network: None) -> None:
    h = load_model(str(tiny_llama_dir), backend="nnsight", remote=True)
    assert isinstance(h.backend, NDIFBackend) and (h.n_layers, h.d_model) == (4, 64)
    assert {p.device.type for p in h.model.parameters()} == {"meta"}  # no weights were loaded here
    assert h.fingerprint == load_model(str(tiny_llama_dir)).fingerprint  # probes trained locally apply
    req = remote_request(h, IDS, CAPTURE)
    key = f'nnsight.modeling.transformers.TransformersModel:{{"repo_id": "{CANONICAL}", "revision": null, ' \
          '"task": "text-generation"}'
    assert req.host == CONFIG.API.HOST and req.host.startswith("https://") and req.model_key == key
    assert req.envelope["model_key"] == key and req.envelope["env"] == {"attn_implementation": "sdpa"}
    assert req.headers == {"ndif-api-key": KEY} and KEY not in repr(req)
    assert req.hook_points == ("blocks.0.resid_pre", "blocks.1.attn_out", "blocks.2.mlp_out",
                               "blocks.3.resid_post")
    assert req.input_shape == (2, 6) and len(req.payload) > 0
    assert _modules_named(req.payload, req.envelope["compress"]) == set()  # the server needs no tripwire


def test_the_module_check_sees_tripwire_code_in_a_trace_body(tiny_llama_dir: Path, offline_ndif: None) -> None:
    """The payload check above could fail: a body that calls tripwire code ships a tripwire module."""
    from tripwire.activations.hooks import hook_point

    h = load_model(str(tiny_llama_dir), backend="nnsight", remote=True)
    assert isinstance(h.backend, NDIFBackend)
    lm, serialise = h.backend.lm, _Serialise(compress=True)
    with lm.trace(input_ids=torch.tensor([IDS[0]]), backend=serialise):
        layer = hook_point("blocks.-1.resid_post", 4).layer
        out = lm.model.layers[layer].output.save()  # noqa: F841
    assert serialise.payload is not None
    assert _modules_named(serialise.payload, True)


def test_a_host_url_overrides_the_default(tiny_llama_dir: Path, offline_ndif: None) -> None:
    h = load_model(str(tiny_llama_dir), backend="nnsight", remote="https://ndif.example.org")
    assert remote_request(h, IDS, CAPTURE[:1]).host == "https://ndif.example.org"


@pytest.fixture(scope="module")
def simulated(tiny_llama_dir: Path) -> ModelHandle:
    return load_model(str(tiny_llama_dir), backend="nnsight", remote="local", attn_implementation="eager")


def test_the_simulated_remote_path_gives_the_local_activations(tiny_llama_dir: Path, simulated: ModelHandle,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NDIF_API_KEY", raising=False)  # the simulation needs no key
    local = load_model(str(tiny_llama_dir), attn_implementation="eager")
    ref = local.forward(IDS, capture=CAPTURE, stop_after_last_capture=False)
    got = simulated.forward(IDS, capture=CAPTURE, stop_after_last_capture=False)
    assert got.logits is not None and ref.logits is not None and torch.equal(got.logits, ref.logits)
    assert all(torch.equal(got.captured[k], ref.captured[k]) for k in CAPTURE)
    early = simulated.forward(IDS, capture=CAPTURE[:2])
    assert early.logits is None and all(torch.equal(early.captured[k], ref.captured[k]) for k in CAPTURE[:2])


def test_what_stays_local_is_refused_clearly(simulated: ModelHandle) -> None:
    with pytest.raises(RemoteUnsupportedError, match="interventions"):
        simulated.forward(IDS, capture=CAPTURE[:1], interventions={"blocks.0.resid_post": lambda a, p: a})
    with pytest.raises(RemoteUnsupportedError, match="teacher-forced forwards only"):
        simulated.generate([IDS[0]])
    with pytest.raises(RemoteUnsupportedError, match="runs locally"):
        remote_request(load_model(simulated.model, tokenizer=simulated.tokenizer), IDS, CAPTURE)

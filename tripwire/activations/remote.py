"""NDIF: capture activations of a model no local machine holds, through nnsight's `remote` execution.

The model is built here on the meta device from its config (no weights), so hook points, layer counts and
the tokenizer are local; each forward is one nnsight trace shipped to NDIF (https://ndif.us), which runs
it on its copy of the checkpoint and sends back the saved activations. The API key comes from an
environment variable (NDIF_API_KEY), never from a file or an argument that could end up in a config.

What runs remotely is teacher-forced capture (scoring transcripts and replies with a probe): one round
trip per batch. Interventions, KV caches and the decode loop stay local-only; they are refused clearly.
`prepare` builds and serialises the request a forward would send without sending it, and
`remote="local"` (nnsight's simulation: serialise, deserialise with local modules hidden, run here) runs
the same trace on weights loaded here, so a script can be checked offline before it spends NDIF time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from tripwire.activations.backends.base import Captured, ForwardCall, ForwardResult
from tripwire.activations.backends.hf import decoder_layers
from tripwire.activations.batching import pad_left, positions
from tripwire.activations.handle import ModelHandle
from tripwire.activations.hooks import HookPoint, execution_order, nnsight_path
from tripwire.activations.load_errors import ModelLoadError
from tripwire.activations.source import ModelSource
from tripwire.errors import TripwireError

NDIF_KEY_ENV = "NDIF_API_KEY"
_GET_KEY = "https://login.ndif.us"


class RemoteUnsupportedError(TripwireError, RuntimeError):
    """Something a remote (NDIF) model cannot do in tripwire; the message says what to do instead."""


def ndif_api_key(env_var: str = NDIF_KEY_ENV) -> str:
    key = os.environ.get(env_var, "").strip()
    if not key:
        raise ModelLoadError(
            f"remote=True runs the model on NDIF, which needs an API key in the environment variable {env_var}, "
            f"and it is not set. Get a key at {_GET_KEY}, then `export {env_var}=<your key>`; or use "
            "remote='local' to run the same trace on weights loaded here."
        )
    return key


@dataclass(frozen=True)
class RemoteRequest:
    """What one forward sends to NDIF: where, the routing envelope, the headers and the serialised trace."""

    host: str
    model_key: str
    envelope: dict[str, Any]  # nnsight's RequestModel JSON (the form field `data`)
    headers: dict[str, str] = field(repr=False)  # `ndif-api-key` among them, so not in the repr
    payload: bytes = field(repr=False)  # the serialised trace (the form field `blob`)
    hook_points: tuple[str, ...] = ()
    input_shape: tuple[int, int] = (0, 0)


class _Serialise:
    """An nnsight backend that serialises the trace as the remote backend does, and stops there."""

    def __init__(self, compress: bool) -> None:
        self.compress = compress
        self.payload: bytes | None = None

    def __call__(self, tracer: Any) -> None:
        from nnsight.ndif import pull_env  # optional: remote models only
        from nnsight.schema.request import RequestModel  # optional: remote models only

        pull_env()  # as the remote backend does: local modules travel by value
        self.payload = RequestModel.serialize(tracer, self.compress)


class NDIFBackend:
    """tripwire's Backend protocol over nnsight remote traces (or nnsight's local simulation of them)."""

    name = "nnsight"

    def __init__(self, lm: Any, layers_path: str, n_layers: int, host: str | None, api_key: str | None,
                 simulate: bool = False) -> None:
        from nnsight.schema.config import CONFIG  # optional: remote models only

        self.lm, self.layers_path, self.n_layers = lm, layers_path, n_layers
        self.host = host or CONFIG.API.HOST
        self.api_key, self.simulate = api_key, simulate
        self._model_key: str | None = None

    @property
    def model_key(self) -> str:
        """The name NDIF knows the checkpoint by (nnsight canonicalises the id with one hub call)."""
        if self._model_key is None:
            try:
                self._model_key = str(self.lm.to_model_key())
            except Exception as exc:  # hub errors: offline, unknown repo, rate limit
                raise ModelLoadError(
                    f"cannot name {self.lm.repo_id!r} for NDIF (nnsight asks the Hugging Face hub for its "
                    f"canonical id): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from None
        return self._model_key

    def remote_backend(self) -> Any:
        """nnsight's RemoteBackend for this model, the key from our environment variable: what `run` sends
        through and what `prepare` reads. The env carries the attention implementation, as nnsight's own
        `remote=True` does, so the server runs what the local meta model resolved to."""
        from nnsight.intervention.backends.remote import RemoteBackend  # optional: remote models only

        return RemoteBackend(self.model_key, host=self.host, api_key=self.api_key,
                             env={"attn_implementation": self.lm.attn_implementation})

    def run(self, call: ForwardCall) -> ForwardResult:
        self._check(call)
        saved, logits = self._trace(call, None if self.simulate else self.remote_backend())
        if saved is None:
            raise RemoteUnsupportedError("the remote trace returned nothing; see nnsight's status output above")
        points = self._points(call)
        captured = {hp: _first(v).detach().to("cpu").clone() for hp, v in zip(points, saved, strict=True)}
        return ForwardResult(logits.to("cpu") if logits is not None else None, Captured(captured, self.n_layers))

    def prepare(self, call: ForwardCall) -> RemoteRequest:
        """Build and serialise the request `run` would send for this call, without sending it."""
        from nnsight.schema.request import RequestModel  # optional: remote models only

        self._check(call)
        remote = self.remote_backend()
        serialise = _Serialise(remote.compress)
        self._trace(call, serialise)
        assert serialise.payload is not None
        envelope = RequestModel(model_key=remote.model_key, compress=remote.compress, env=remote.env)
        return RemoteRequest(
            host=remote.host, model_key=remote.model_key, envelope=json.loads(envelope.metadata()),
            headers={"ndif-api-key": remote.api_key} if remote.api_key else {}, payload=serialise.payload,
            hook_points=tuple(str(hp) for hp in self._points(call)),
            input_shape=(int(call.input_ids.shape[0]), int(call.input_ids.shape[1])),
        )

    def _check(self, call: ForwardCall) -> None:
        if call.interventions:
            raise RemoteUnsupportedError(
                "interventions (steering) are not sent to NDIF by tripwire; capture remotely, and steer a "
                "model loaded here (load_model(..., device_map='auto') across local GPUs).")
        if call.past is not None or call.use_cache:
            raise RemoteUnsupportedError(
                "a remote model runs teacher-forced forwards only (no KV cache, so no decode loop): score "
                "fixed transcripts with it, or generate on a local model or with vLLM.")

    @staticmethod
    def _points(call: ForwardCall) -> list[HookPoint]:
        return sorted(set(call.capture), key=execution_order)

    def _trace(self, call: ForwardCall, backend: Any) -> tuple[list[Any] | None, torch.Tensor | None]:
        """One trace. Its body names only nnsight, the model's envoys and plain values, so it deserialises
        on a server that has never seen tripwire."""
        import nnsight  # optional: remote models only

        envoys, kinds = [], []
        for hp in self._points(call):
            path, kind = nnsight_path(hp, self.layers_path)
            envoy = self.lm
            for part in path.split("."):
                envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
            envoys.append(envoy)
            kinds.append(kind)
        want_logits = call.stop_after_layer is None or not envoys
        target = {"remote": "local"} if backend is None else {"backend": backend}
        lm, saved, logits = self.lm, None, None
        with lm.trace(input_ids=call.input_ids, attention_mask=call.attention_mask,
                           position_ids=call.position_ids, logits_to_keep=call.logits_to_keep, **target) as tracer:
            saved = nnsight.save([])
            for envoy, kind in zip(envoys, kinds, strict=True):
                saved.append(envoy.input if kind == "input" else envoy.output)
            if want_logits:
                logits = lm.output.logits.save()
            else:
                tracer.stop()
        return saved, logits


def _first(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, tuple) else value


def remote_handle(source: ModelSource, tokenizer: Any, remote: bool | str, model: Any = None,
                  api_key_env: str = NDIF_KEY_ENV) -> ModelHandle:
    """A ModelHandle whose forwards run on NDIF (`remote` True or a host URL) or in nnsight's local
    simulation of NDIF (`remote="local"`, on `model`, weights loaded here)."""
    from nnsight import TransformersModel  # optional: remote models only

    simulate = remote == "local"
    key = None if simulate else ndif_api_key(api_key_env)
    host = remote if isinstance(remote, str) and not simulate else None
    if model is None:  # nnsight builds the architecture on the meta device from the config: no weights
        lm = TransformersModel(source.path, tokenizer=tokenizer, task="text-generation", revision=source.revision)
        model = lm.pipeline.model
    else:
        lm = TransformersModel(model, tokenizer=tokenizer, task="text-generation")
    cfg = model.config
    backend = NDIFBackend(lm, decoder_layers(model)[0], int(cfg.num_hidden_layers), host, key, simulate)
    return ModelHandle.assemble(model, source, tokenizer, backend, "cpu", model.dtype)


def remote_request(handle: ModelHandle, token_ids: list[list[int]], capture: list[str],
                   stop_after_last_capture: bool = True) -> RemoteRequest:
    """The request `handle.forward(token_ids, capture=capture)` would send to NDIF, built and serialised
    here and not sent: for a dry run, and to check a script before it spends NDIF time."""
    if not isinstance(handle.backend, NDIFBackend):
        raise RemoteUnsupportedError(f"{handle.name!r} runs locally; load it with remote=True to build an NDIF "
                                     "request.")
    ids, mask = pad_left(token_ids, handle.pad_id)
    points = handle.hook_points(capture)
    call = ForwardCall(input_ids=ids, attention_mask=mask, position_ids=positions(mask), capture=points,
                       interventions={}, stop_after_layer=(max(hp.layer for hp in points)
                                                           if points and stop_after_last_capture else None))
    return handle.backend.prepare(call)

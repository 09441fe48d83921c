"""The vLLM rollout backend, offline: settings, requests, record conversion, the not-installed error, the plan.

vLLM needs CUDA GPUs and is not installed here, so its engine never runs in these tests. Everything fed
to it is plain data, checked against the HF path on the tiny model. The one stand-in is `_Output` below:
a finished request shaped as vLLM's `RequestOutput` with vllm-lens's `activations` attached (prompt ids,
one completion's token ids and finish reason, `residual_stream` as `[layer, position, d_model]` over the
prompt and all generated tokens but the last). Its tokens come from the HF decode loop and its
activations from an HF teacher-forced pass, so a correct conversion must reproduce the HF rollout's
records and rows exactly; what vLLM itself samples or captures is left to a GPU run.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tripwire.activations import AllTokens, ReplyOnly, SamplingParams
from tripwire.activations.chat import render_conversation
from tripwire.activations.hooks import hook_points
from tripwire.activations.rollout import Rollout, rollout_items
from tripwire.activations.runner import run_batches
from tripwire.activations.store import ResidualStore
from tripwire.activations.vllm_backend import (
    INSTALL,
    VLLM_VARIANT,
    EngineFacts,
    VLLMConfigError,
    VLLMNotInstalledError,
    VLLMOutputError,
    VLLMRollout,
    VLLMSettings,
    capture_layers,
    check_fit,
    eos_ids,
    generated_row,
    plan_vllm,
    require_vllm,
    vllm_requests,
)
from tripwire.activations.vllm_backend.plan import min_gpus
from tripwire.activations.vllm_backend.records import stop_reason
from tripwire.experiments.config import ConfigError, load_config
from tripwire.experiments.rollout_vllm import VLLMRolloutConfig, run_rollout_vllm
from tripwire.scenarios import render

HOOKS = ["blocks.1.resid_post", "blocks.3.resid_post"]
IDS = ["blackmail_explicit-america_replacement", "lethal_none-none_restriction"]
# Llama-3.3-70B-Instruct's config.json sizes; n_params as tripwire estimates it from them
LLAMA_70B = EngineFacts(n_layers=80, d_model=8192, n_heads=64, n_kv_heads=8, head_dim=128,
                        context_length=131072, n_params=70_553_706_496)


def _problem(data: dict[str, Any]) -> str:
    with pytest.raises(VLLMConfigError) as err:
        VLLMSettings.parse(data)
    return str(err.value)


def test_settings_errors_name_the_field_and_the_fix_before_vllm_is_imported() -> None:
    assert VLLMSettings.parse({"tensor_parallel_size": 8}).gpus == 8  # the good one passes
    assert "vllm.tensor_parallel_size" in _problem({"tensor_parallel_size": 0})
    assert "vllm.gpu_memory_utilization" in _problem({"gpu_memory_utilization": 1.5})
    assert "vllm.tensor_paralel_size" in _problem({"tensor_paralel_size": 8})  # a typo is not ignored
    assert "awq" in _problem({"quantization": "int3"})  # names the choices
    assert "set distributed_backend: ray" in _problem({"ray_address": "auto"})
    assert "pipeline_parallel_size to the number of nodes" in _problem({"tensor_parallel_size": 16})
    assert "set distributed_backend: ray" in _problem({"tensor_parallel_size": 8, "pipeline_parallel_size": 2})
    two_nodes = VLLMSettings.parse({"tensor_parallel_size": 8, "pipeline_parallel_size": 2,
                                    "distributed_backend": "ray", "ray_address": "auto"})
    assert (two_nodes.gpus, two_nodes.nodes) == (16, 2)
    assert "vllm" not in sys.modules


def test_engine_kwargs_are_plain_data_and_quantisation_enters_the_fingerprint() -> None:
    one = VLLMSettings().engine_kwargs("m", None, 7)
    assert one["distributed_executor_backend"] is None and one["seed"] == 7 and "quantization" not in one
    many = VLLMSettings(tensor_parallel_size=8, pipeline_parallel_size=2, distributed_backend="ray",
                        max_model_len=8192, quantization="fp8").engine_kwargs("m", "rev", 0)
    assert (many["tensor_parallel_size"], many["pipeline_parallel_size"]) == (8, 2)
    assert (many["distributed_executor_backend"], many["max_model_len"], many["quantization"]) == ("ray", 8192, "fp8")
    assert VLLMSettings().fingerprint("hf:x") == "hf:x"
    assert VLLMSettings(quantization="fp8").fingerprint("hf:x") == "hf:x+vllm-fp8"


def test_fit_checks_heads_layers_context_and_memory() -> None:
    ok = VLLMSettings(tensor_parallel_size=8)
    check_fit(ok, LLAMA_70B, 5000, min_gpus(ok, LLAMA_70B, 5000, _hw()))
    with pytest.raises(VLLMConfigError, match=r"tensor_parallel_size: 3 does not divide .* 64 .*\[1, 2, 4, 8\]"):
        check_fit(VLLMSettings(tensor_parallel_size=3), LLAMA_70B, 5000)
    with pytest.raises(VLLMConfigError, match=r"max_model_len: .* 5000 tokens.* >= 5000"):
        check_fit(VLLMSettings(tensor_parallel_size=8, max_model_len=4096), LLAMA_70B, 5000)
    with pytest.raises(VLLMConfigError, match="8 stages for 4 layers; use at most 4"):
        check_fit(VLLMSettings(pipeline_parallel_size=8), replace(LLAMA_70B, n_layers=4), 10)
    one = VLLMSettings()  # 70B in bf16 is ~131 GiB: not on one 80 GiB GPU, on one in fp8
    with pytest.raises(VLLMConfigError, match="need 2"):
        check_fit(one, LLAMA_70B, 5000, min_gpus(one, LLAMA_70B, 5000, _hw()))
    fp8 = VLLMSettings(quantization="fp8")
    assert min_gpus(fp8, LLAMA_70B, 5000, _hw()) == 1


def _hw() -> Any:
    from tripwire.activations.vllm_backend import Hardware

    return Hardware()


def test_capture_layers_map_hook_points_to_decoder_layer_outputs() -> None:
    points = hook_points(["blocks.3.resid_pre", "blocks.2.resid_post", "blocks.-1.resid_post"], 4)
    layers, rows = capture_layers(points)
    assert layers == [2, 3]  # resid_pre of 3 is the output of layer 2: captured once
    assert rows == {"blocks.2.resid_post": 0, "blocks.3.resid_pre": 0, "blocks.3.resid_post": 1}
    for bad in ("blocks.1.attn_out", "blocks.1.mlp_out", "blocks.0.resid_pre"):
        with pytest.raises(VLLMConfigError, match="Hugging Face backend"):
            capture_layers(hook_points([bad], 4))


def test_requests_feed_vllm_what_the_hf_rollout_feeds_its_model(handle, tiny_llama_dir: Path) -> None:
    convs = [render(i, seed=s, length="short") for i in IDS for s in (0, 1)]
    params = SamplingParams(max_new_tokens=16, temperature=1.0, top_p=0.9, stop=("</x>",))
    eos = sorted(eos_ids(handle.tokenizer, str(tiny_llama_dir)))
    assert set(eos) == handle.eos_ids
    got = vllm_requests(handle.tokenizer, handle.chat_capabilities, handle.fingerprint, convs, 3, params, eos,
                        [1, 3], base_seed=5)
    hf = rollout_items(handle, convs, 3, params, base_seed=5, variant=VLLM_VARIANT)
    assert [w.record_id for w in got] == [w.record_id for w in hf]
    assert [w.payload.item for w in got] == [w.payload for w in hf]  # prompt ids, seeds, tool form
    # the sampler is part of the id: an HF sample never stands in for a vLLM one on resume
    plain = rollout_items(handle, convs, 3, params, base_seed=5)
    assert not {w.record_id for w in got} & {w.record_id for w in plain}
    # a prompt rendered without the generation prompt (a broken construction) is not what vLLM gets
    bare = render_conversation(handle.tokenizer, handle.chat_capabilities, convs[0], add_generation_prompt=False)
    assert got[0].payload.prompt["prompt_token_ids"] != bare.token_ids
    kw = got[4].payload.sampling
    assert kw["seed"] == hf[4].payload.seed and kw["stop_token_ids"] == eos and kw["top_k"] == 0
    assert (kw["max_tokens"], kw["temperature"], kw["top_p"], kw["stop"]) == (16, 1.0, 0.9, ["</x>"])
    assert kw["include_stop_str_in_output"]  # else vLLM drops the end-of-turn token from token_ids
    assert kw["extra_args"] == {"output_residual_stream": [1, 3]}


@dataclass
class _Completion:
    token_ids: list[int]
    finish_reason: str
    stop_reason: int | str | None = None


@dataclass
class _Output:
    """A stand-in for a finished vLLM RequestOutput with vllm-lens activations (see the module docstring)."""

    prompt_token_ids: list[int]
    outputs: list[_Completion]
    activations: dict[str, torch.Tensor] = field(default_factory=dict)


_FINISH = {"eos": ("stop", None), "max_new_tokens": ("length", None), "stop_string": ("stop", "</x>")}


def _vllm_outputs(handle, rows) -> list[_Output]:
    """What vLLM with vllm-lens returns for these token sequences: activations from a teacher-forced pass
    over every token but the last, stacked over the captured layers in ascending order."""
    out = []
    for row in rows:
        fed = row.token_ids[:-1]
        captured = handle.forward([fed], capture=HOOKS).captured
        stack = torch.stack([captured[h][0] for h in HOOKS])
        finish, reason = _FINISH[row.stop_reason]
        out.append(_Output(list(row.prompt_ids), [_Completion(list(row.new_ids), finish, reason)],
                           {"residual_stream": stack}))
    return out


def test_vllm_outputs_become_the_records_and_rows_of_the_hf_rollout(handle, tmp_path: Path) -> None:
    convs = [render(i, seed=0, length="short") for i in IDS]
    params = SamplingParams(max_new_tokens=8, temperature=1.0)
    policy = AllTokens()
    work = rollout_items(handle, convs, 2, params, variant=VLLM_VARIANT)
    hf = Rollout(handle, HOOKS, params, policy)(work)
    rows = handle.generate([w.payload.prompt_ids for w in work], sampling=params, seeds=[w.payload.seed for w in work])
    outputs = _vllm_outputs(handle, rows)
    items = vllm_requests(handle.tokenizer, handle.chat_capabilities, handle.fingerprint, convs, 2, params,
                          sorted(handle.eos_ids), [1, 3])
    _, hook_rows = capture_layers(handle.hook_points(HOOKS))
    calls: list[int] = []

    def generate(prompts, sampling):
        calls.append(len(prompts))
        assert [p["prompt_token_ids"] for p in prompts] == [o.prompt_token_ids for o in outputs[: len(prompts)]]
        return outputs[: len(prompts)]

    got = VLLMRollout(handle.tokenizer, generate, hook_rows, params, policy, VLLM_VARIANT)(items)
    for a, b in zip(got.records, hf.records, strict=True):
        assert a.meta.pop("sampler") == "vllm"
        assert a == b  # ids, token layout, text, positions, labels, outcome, meta
    for h in HOOKS:
        assert torch.allclose(got.rows[h], hf.rows[h], atol=1e-4, rtol=1e-4)
    # into a store, resumable by record id: the rerun calls vLLM for nothing
    store = ResidualStore.create(tmp_path / "s", model_name=handle.name, model_fingerprint=handle.fingerprint,
                                 hook_points=HOOKS, d_model=handle.d_model)
    compute = VLLMRollout(handle.tokenizer, generate, hook_rows, params, policy, VLLM_VARIANT)
    assert run_batches(store, items, 4, compute, progress=False).records_written == 4
    assert run_batches(store, items, 4, compute, progress=False).records_written == 0 and calls == [4, 4]
    assert {r.record_id for r in ResidualStore.open(tmp_path / "s").records()} == {w.record_id for w in work}


def test_outputs_that_do_not_match_their_request_are_refused(handle) -> None:
    convs = [render(i, seed=0, length="short") for i in IDS]
    params = SamplingParams(max_new_tokens=4, temperature=0.0)
    items = vllm_requests(handle.tokenizer, handle.chat_capabilities, handle.fingerprint, convs, 1, params,
                          sorted(handle.eos_ids), [1, 3])
    rows = handle.generate([w.payload.item.prompt_ids for w in items], sampling=params)
    outputs = _vllm_outputs(handle, rows)
    _, hook_rows = capture_layers(handle.hook_points(HOOKS))
    item = items[0].payload.item
    assert generated_row(outputs[0], item, handle.tokenizer, hook_rows).new_ids == rows[0].new_ids
    with pytest.raises(VLLMOutputError, match="request order"):
        generated_row(outputs[1], item, handle.tokenizer, hook_rows)
    with pytest.raises(VLLMOutputError, match="vllm-lens plugin is not active"):
        generated_row(replace(outputs[0], activations={}), item, handle.tokenizer, hook_rows)
    short = {"residual_stream": outputs[0].activations["residual_stream"][:, :-1]}
    with pytest.raises(VLLMOutputError, match="prefix caching"):
        generated_row(replace(outputs[0], activations=short), item, handle.tokenizer, hook_rows)


def test_finish_reasons_in_the_decode_loops_words() -> None:
    assert stop_reason(_Completion([], "length")) == "max_new_tokens"
    assert stop_reason(_Completion([], "stop", None)) == "eos"
    assert stop_reason(_Completion([], "stop", 2)) == "eos"  # one of stop_token_ids: our end-of-turn ids
    assert stop_reason(_Completion([], "stop", "</x>")) == "stop_string"
    with pytest.raises(VLLMOutputError, match="abort"):
        stop_reason(_Completion([], "abort"))


def _config(tmp_path: Path, model: str, **extra: Any) -> Path:
    data = {"model": model, "store": str(tmp_path / "store"), "hook_points": HOOKS, "samples": 3,
            "scenarios": {"ids": IDS}, "sampling": {"max_new_tokens": 32, "temperature": 1.0}, **extra}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_not_installed_is_a_clear_error_after_the_checks_and_before_any_store(
        tiny_llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here: the run would start an engine")
    monkeypatch.setattr(sys, "version_info", (3, 11, 7))
    with pytest.raises(VLLMNotInstalledError, match=r"needs Python >= 3\.12.*" + re.escape(INSTALL)):
        require_vllm()
    monkeypatch.setattr(sys, "version_info", (3, 12, 0))
    cfg = load_config(_config(tmp_path, str(tiny_llama_dir)), VLLMRolloutConfig)
    assert isinstance(cfg, VLLMRolloutConfig)
    with pytest.raises(VLLMNotInstalledError) as err:
        run_rollout_vllm(cfg)
    assert "vllm and vllm_lens" in str(err.value) and INSTALL in str(err.value)
    if importlib.util.find_spec("ray") is None:  # several nodes need Ray too, and say so
        with pytest.raises(VLLMNotInstalledError, match="vllm and vllm_lens and ray"):
            require_vllm(ray=True)
    assert not (tmp_path / "store").exists()


def test_config_refuses_what_vllm_cannot_do(tmp_path: Path) -> None:
    path = _config(tmp_path, "default", device="cuda", backend="nnsight",
                   vllm={"tensor_parallel_size": 8, "gpu_memory_utilisation": 0.9})
    with pytest.raises(ConfigError) as err:
        load_config(path, VLLMRolloutConfig)
    assert "vllm.gpu_memory_utilisation" in str(err.value)
    path = _config(tmp_path, "default", device="cuda", backend="nnsight", vllm={"tensor_parallel_size": 8})
    with pytest.raises(ConfigError, match=r"(?s)device: vLLM places the model.*backend: backend chooses"):
        load_config(path, VLLMRolloutConfig)


def test_dry_run_plans_the_hf_rollouts_tokens(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from tripwire.experiments.config import RolloutConfig
    from tripwire.experiments.rollout_capture import run_rollout

    path = _config(tmp_path, str(tiny_llama_dir))
    plan, summary = run_rollout_vllm(load_config(path, VLLMRolloutConfig), dry_run=True)
    hf_plan, _ = run_rollout(load_config(path, RolloutConfig), dry_run=True)
    assert summary is None and plan.samples == hf_plan.sequences == 6
    assert plan.prompt_tokens + plan.max_generated_tokens == hf_plan.tokens
    assert plan.gpus == plan.min_gpus == 1 and plan.capture_host_gib > 0
    assert not (tmp_path / "store").exists()


def test_plan_counts_rows_disk_and_scales_time_with_gpus_and_samples() -> None:
    lengths = [3000] * 100
    tp8 = VLLMSettings(tensor_parallel_size=8)
    reply = plan_vllm(tp8, LLAMA_70B, lengths, 1024, ReplyOnly(), 2, 2, 2, 256)
    assert reply.stored_rows == 100 * 1023  # each reply but its last token
    assert reply.bytes_on_disk == reply.stored_rows * 2 * 8192 * 2
    assert plan_vllm(tp8, LLAMA_70B, lengths, 1024, AllTokens(), 2, 2, 2, 256).stored_rows == 100 * (3000 + 1022)
    assert reply.min_gpus == 2 and reply.gpus == 8 and reply.nodes == 1
    tp4 = plan_vllm(VLLMSettings(tensor_parallel_size=4), LLAMA_70B, lengths, 1024, ReplyOnly(), 2, 2, 2, 256)
    assert tp4.eta_seconds == pytest.approx(2 * reply.eta_seconds)
    double = plan_vllm(tp8, LLAMA_70B, lengths * 2, 1024, ReplyOnly(), 2, 2, 2, 256)
    assert double.eta_seconds == pytest.approx(2 * reply.eta_seconds)
    assert reply.capture_host_gib == pytest.approx(100 * 4024 * 2 * 8192 * 2 / 2**30)  # batch 256 > 100 samples
    assert "assumed, not measured" in reply.describe()

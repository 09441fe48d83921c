"""Capture overhead, early stop and the decode loop vs HF generate, on the default model.

    python benchmarks/bench_backends.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import best_of, machine, ratio  # noqa: E402

from activations import SamplingParams, load_model  # noqa: E402
from activations.batching import pad_left  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_tokens, repeats, new_tokens = (128, 2, 16) if args.quick else (512, 3, 48)
    print(machine())
    handles = {b: load_model("default", backend=b) for b in ("hf", "transformer_lens", "nnsight")}
    hf = handles["hf"]
    text = " ".join(["The agent reads every email in the inbox before it acts."] * 64)
    ids = torch.tensor([hf.tokenizer(text, add_special_tokens=False).input_ids[:n_tokens]])
    mid = hf.n_layers // 2
    three = ["blocks.0.resid_post", f"blocks.{mid}.resid_post", "blocks.-1.resid_post"]

    overhead = {}
    for name, h in handles.items():
        bare = best_of(lambda h=h: h.forward(ids, stop_after_last_capture=False), repeats)
        cap = best_of(lambda h=h: h.forward(ids, capture=three, stop_after_last_capture=False), repeats)
        overhead[name] = cap / bare
        print(f"{name:>16}: bare forward {bare * 1000:.0f} ms, with 3-layer capture {cap * 1000:.0f} ms "
              f"({n_tokens} tokens)")

    full = best_of(lambda: hf.forward(ids, capture=[f"blocks.{mid}.resid_post"], stop_after_last_capture=False),
                   repeats)
    early = best_of(lambda: hf.forward(ids, capture=[f"blocks.{mid}.resid_post"]), repeats)
    print(f"  mid-layer capture: full forward {full * 1000:.0f} ms, early stop {early * 1000:.0f} ms")

    prompts = [hf.render_chat([{"role": "user", "content": q}]) for q in
               ("Write a short poem about the sea.", "Explain what an inbox is.", "List four fruits.",
                "Describe a server room.")]
    params = SamplingParams(max_new_tokens=new_tokens)
    ours_rows: list = []
    pad, mask = pad_left(prompts, hf.pad_id)

    def ours() -> None:
        ours_rows[:] = hf.generate(prompts, sampling=params)

    def theirs() -> None:
        hf.model.generate(input_ids=pad, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False,
                          pad_token_id=hf.pad_id, eos_token_id=sorted(hf.eos_ids))

    t_ours, t_hf = best_of(ours, repeats), best_of(theirs, repeats)
    n_new = sum(len(r.new_ids) for r in ours_rows)
    ours_tps, hf_tps = n_new / t_ours, n_new / t_hf
    print(f"  decode (batch {len(prompts)}, {n_new} new tokens): ours {ours_tps:.1f} tok/s, "
          f"HF generate {hf_tps:.1f} tok/s")
    for name in ("transformer_lens", "nnsight"):
        print(f"  capture overhead {name}: {overhead[name]:.3f}")
    print(ratio("capture_overhead", overhead["hf"]))
    print(ratio("early_stop_mid_layer", early / full))
    print(ratio("decode_loop_vs_hf_generate", ours_tps / hf_tps))


if __name__ == "__main__":
    main()

"""Capture overhead, early stop, the decode loop vs HF generate, and the decode loop's device-to-host
transfers per step, on the default model.

    python benchmarks/bench_backends.py [--quick] [--device cuda]

--device puts the model (and every tensor the benchmark makes) on that device: `cpu` by default, `cuda`
on a GPU machine. Each ratio's two sides run in turn within one loop (interleaved repeats, best kept).
`host_syncs_per_step` counts the decode loop's reads back to the host (`.to(host)`, `.cpu()`, `.item()`,
`.tolist()`, `.numpy()` called from activations/) per decode step, with 3-hook capture and top-p sampling;
the once-per-call move of the capture buffers is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import decode_transfers, device_argument, interleaved, machine, ratio  # noqa: E402

from tripwire.activations import SamplingParams, load_model  # noqa: E402
from tripwire.activations.batching import pad_left  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    device_argument(parser)
    args = parser.parse_args()
    n_tokens, repeats, new_tokens = (128, 2, 16) if args.quick else (512, 3, 48)
    print(machine())
    handles = {b: load_model("default", backend=b, device=args.device) for b in ("hf", "transformer_lens", "nnsight")}
    hf = handles["hf"]
    text = " ".join(["The agent reads every email in the inbox before it acts."] * 64)
    ids = torch.tensor([hf.tokenizer(text, add_special_tokens=False).input_ids[:n_tokens]])
    mid = hf.n_layers // 2
    three = ["blocks.0.resid_post", f"blocks.{mid}.resid_post", "blocks.-1.resid_post"]
    overhead = {}
    for name, h in handles.items():
        t = interleaved({"bare": lambda h=h: h.forward(ids, stop_after_last_capture=False),
                         "capture": lambda h=h: h.forward(ids, capture=three, stop_after_last_capture=False)},
                        repeats)
        overhead[name] = t["capture"] / t["bare"]
        print(f"{name:>16}: bare forward {t['bare'] * 1000:.0f} ms, with 3-layer capture {t['capture'] * 1000:.0f} ms "
              f"({n_tokens} tokens)")
    mid_hook = [f"blocks.{mid}.resid_post"]
    stop = interleaved({"full": lambda: hf.forward(ids, capture=mid_hook, stop_after_last_capture=False),
                        "early": lambda: hf.forward(ids, capture=mid_hook)}, repeats)
    print(f"  mid-layer capture: full forward {stop['full'] * 1000:.0f} ms, early stop {stop['early'] * 1000:.0f} ms")
    prompts = [hf.render_chat([{"role": "user", "content": q}]) for q in
               ("Write a short poem about the sea.", "Explain what an inbox is.", "List four fruits.",
                "Describe a server room.")]
    params = SamplingParams(max_new_tokens=new_tokens)
    ours_rows: list = []
    pad, mask = pad_left(prompts, hf.pad_id, hf.device)

    def ours() -> None:
        ours_rows[:] = hf.generate(prompts, sampling=params)

    def theirs() -> None:
        hf.model.generate(input_ids=pad, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False,
                          pad_token_id=hf.pad_id, eos_token_id=sorted(hf.eos_ids))

    t = interleaved({"ours": ours, "hf": theirs}, repeats + 1)
    n_new = sum(len(r.new_ids) for r in ours_rows)
    ours_tps, hf_tps = n_new / t["ours"], n_new / t["hf"]
    print(f"  decode (batch {len(prompts)}, {n_new} new tokens): ours {ours_tps:.1f} tok/s, "
          f"HF generate {hf_tps:.1f} tok/s")
    per_step, per_call = decode_transfers(hf, prompts, three, {"temperature": 1.0, "top_p": 0.9})
    print(f"  decode loop reads to the host: {per_step:.2f} per step, {per_call:.0f} once per call "
          f"(batch {len(prompts)}, {len(three)} hook points captured)")
    for name in ("transformer_lens", "nnsight"):
        print(f"  capture overhead {name}: {overhead[name]:.3f}")
    print(ratio("capture_overhead", overhead["hf"]))
    print(ratio("early_stop_mid_layer", stop["early"] / stop["full"]))
    print(ratio("decode_loop_vs_hf_generate", ours_tps / hf_tps))
    print(ratio("host_syncs_per_step", per_step))


if __name__ == "__main__":
    main()

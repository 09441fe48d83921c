"""Where the batch-8 vs batch-1 time goes: prefill (the same total work at any batch size) vs decode steps.

    python benchmarks/profile_batching.py [--device cuda]

Generates for the eight scenarios of bench_rollout.py with 3-layer capture, once with 1 new token (prefill
only) and once with 64, at batch 8 and batch 1; prints the time of each on `common.clock`.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_rollout import IDS  # noqa: E402
from common import clock, device_argument, machine  # noqa: E402

from tripwire.activations import SamplingParams, load_model  # noqa: E402
from tripwire.activations.rollout import rollout_items  # noqa: E402
from tripwire.scenarios import render  # noqa: E402

HOOKS = ["blocks.5.resid_post", "blocks.15.resid_post", "blocks.-1.resid_post"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    device_argument(parser)
    args = parser.parse_args()
    h = load_model("default", device=args.device)
    print(machine())
    convs = [render(i, seed=0, length="short") for i in IDS]
    prompts = [it.payload.prompt_ids for it in rollout_items(h, convs, 1, SamplingParams(max_new_tokens=1))]
    print("prompt tokens:", [len(p) for p in prompts])
    for new in (1, 64):
        params = SamplingParams(max_new_tokens=new, min_new_tokens=new, temperature=1.0, top_p=1.0)
        for bs in (8, 1):
            start = clock()
            for i in range(0, len(prompts), bs):
                h.generate(prompts[i : i + bs], sampling=params, capture=HOOKS)
            print(f"new tokens {new}, batch {bs}: {clock() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()

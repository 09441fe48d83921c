"""Rollout + capture speed and store size, on the default model with short scenarios.

    python benchmarks/bench_rollout.py [--quick] [--device cuda]

`rollout_n8_shared_vs_unshared`: 8 samples (8 seeds) of one prompt, the model organism's training prompt
nearest 450 tokens (what `organism measure` samples), 64 new tokens each, 3-layer capture: one `generate`
call with shared prefill (the prompt runs once) against the same call with `share_prefill=False` (every
row runs it); the tokens must be identical. The full run adds 8 batch-1 calls of the same samples
(`batch8_vs_batch1_same_prompt`). Beside it, the most that ratio could be if a decode step cost no more
than its matrix products: one step's products (every linear layer, LM head included, times an 8-row
input) are timed alone.

`kv_reserve_speedup`: the same 8 samples after a full scenario (3,248 tokens), 32 new tokens, with the
decode loop's KV cache written into reserved room (`KVCache.reserve`) / grown by transformers'
`torch.cat` (reserve switched off for the run); identical tokens.

--device puts the model (and every tensor the benchmark makes) on that device: `cpu` by default, `cuda`
on a GPU machine. Each ratio's two sides run in turn within one loop (interleaved repeats, best kept), so
a change in machine load hits both. The TransformerLens reference line is skipped with --quick.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import clock, device_argument, interleaved, machine, ratio, timed  # noqa: E402

from tripwire.activations import SamplingParams, load_model  # noqa: E402
from tripwire.activations.batching import pad_left  # noqa: E402
from tripwire.activations.capture import TeacherForcedCapture, capture_items  # noqa: E402
from tripwire.activations.kv_cache import KVCache  # noqa: E402
from tripwire.activations.positions import AllTokens, ReplyOnly  # noqa: E402
from tripwire.activations.rollout import Rollout, rollout_items  # noqa: E402
from tripwire.activations.runner import run_batches  # noqa: E402
from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.scenarios import render  # noqa: E402
from tripwire.scenarios.organism.dataset import training_examples  # noqa: E402
from tripwire.scenarios.spec import Transcript  # noqa: E402

IDS = ["blackmail_explicit-america_replacement", "leaking_explicit-safety_replacement",
       "lethal_explicit-ethical_replacement", "blackmail_none-none_restriction",
       "leaking_latent-global_none", "lethal_swap-pragmatic_replacement",
       "blackmail_explicit-individualism_none", "leaking_ambiguous-none_replacement"]


def _store(handle, root: Path, hooks: list[str]) -> ResidualStore:
    return ResidualStore.create(root, model_name=handle.name, model_fingerprint=handle.fingerprint,
                                hook_points=hooks, d_model=handle.d_model, dtype="float16")


def _shared_samples(h, hooks: list[str], singles: bool, n: int = 8, new_tokens: int = 64
                    ) -> tuple[float, float | None]:
    """(shared prefill / unshared, batch of n samples of one prompt / n batch-1 calls, if `singles`): time
    ratios."""
    prompts = [h.render_conversation(ex.prompt.conversation).token_ids for ex in training_examples()]
    one = min(prompts, key=lambda p: abs(len(p) - 450))
    params = SamplingParams(max_new_tokens=new_tokens, min_new_tokens=new_tokens, temperature=1.0, top_p=1.0)
    seeds, outs = list(range(n)), {}  # outs[share]: each row's new tokens

    def batch(share: bool) -> None:
        outs[share] = [r.new_ids for r in h.generate([one] * n, sampling=params, seeds=seeds, capture=hooks,
                                                     share_prefill=share)]

    def one_by_one() -> None:
        for s in seeds:
            h.generate([one], sampling=params, seeds=[s], capture=hooks)

    fns = {"shared": lambda: batch(True), "unshared": lambda: batch(False)}
    t = interleaved({**fns, "singles": one_by_one} if singles else fns, 2)
    if outs[True] != outs[False]:
        raise RuntimeError("shared prefill changed the sampled tokens")
    print(f"{n} samples of one {len(one)}-token prompt, {new_tokens} new tokens, capture: shared prefill "
          f"{t['shared']:.2f}s, every row prefilled {t['unshared']:.2f}s (identical tokens)"
          + (f", {n} batch-1 calls {t['singles']:.2f}s" if singles else ""))
    prefill = (t["unshared"] - t["shared"]) / (n - 1)  # one row's prompt; the decode steps are the same work
    step, products = (t["shared"] - prefill) / (new_tokens - 1), _step_products(h, n)
    ceiling = (n * prefill + (new_tokens - 1) * products) / (prefill + (new_tokens - 1) * products)
    print(f"one row's prefill {prefill:.2f}s; a decode step {step * 1000:.0f} ms, its matrix products alone "
          f"{products * 1000:.0f} ms: were a step nothing else, the ratio would be at most {ceiling:.2f}")
    return t["unshared"] / t["shared"], t["singles"] / t["shared"] if singles else None


def _step_products(h, rows: int) -> float:
    """Time of one decode step's matrix products alone: every linear layer's weight (the LM head too)
    times a `rows`-row input; best of 3. No step of the decode loop can cost less."""
    linears = [m for m in h.model.modules() if isinstance(m, torch.nn.Linear)]
    inputs = {m.in_features: torch.randn(rows, m.in_features, dtype=m.weight.dtype, device=m.weight.device)
              for m in linears}

    @torch.inference_mode()
    def products() -> None:
        for m in linears:
            torch.nn.functional.linear(inputs[m.in_features], m.weight)

    products()
    return min(timed(products) for _ in range(3))


def _reserve_speedup(h, hooks: list[str], n: int = 8, new_tokens: int = 32) -> float:
    """n samples of a full scenario, decoded with the KV cache's room reserved / grown by concatenation."""
    prompt = h.render_conversation(render(IDS[0], seed=0, length="full")).token_ids
    params = SamplingParams(max_new_tokens=new_tokens, min_new_tokens=new_tokens, temperature=1.0, top_p=1.0)
    reserve, outs = KVCache.reserve, {}

    def run(room: bool) -> None:
        KVCache.reserve = reserve if room else lambda self, tokens: None  # type: ignore[method-assign]
        try:
            outs[room] = [r.new_ids for r in h.generate([prompt] * n, sampling=params, seeds=list(range(n)),
                                                        capture=hooks)]
        finally:
            KVCache.reserve = reserve  # type: ignore[method-assign]

    t = interleaved({"reserved": lambda: run(True), "concatenated": lambda: run(False)}, 2)
    if outs[True] != outs[False]:
        raise RuntimeError("reserving the KV cache's room changed the sampled tokens")
    print(f"{n} samples of one {len(prompt)}-token prompt, {new_tokens} new tokens, capture, shared prefill: "
          f"KV cache in reserved room {t['reserved']:.2f}s, grown by concatenation {t['concatenated']:.2f}s")
    return t["concatenated"] / t["reserved"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    device_argument(parser)
    args = parser.parse_args()
    new_tokens, batch, n_replies = (16, 4, 8) if args.quick else (64, 8, 32)
    print(machine())
    h = load_model("default", device=args.device)
    hooks = [str(hp) for hp in h.hook_points(["blocks.5.resid_post", "blocks.15.resid_post", "blocks.-1.resid_post"])]
    convs = [render(i, seed=0, length="short") for i in IDS[:batch]]
    # fixed-length decoding (stop only at max_new_tokens) so every method does the same work
    params = SamplingParams(max_new_tokens=new_tokens, min_new_tokens=new_tokens, temperature=1.0, top_p=1.0)
    tmp = Path(tempfile.mkdtemp(prefix="tripwire-bench-"))
    try:
        items = rollout_items(h, convs, 1, params)
        prompts = [it.payload.prompt_ids for it in items]
        n_prompt = sum(len(p) for p in prompts)
        print(f"{len(prompts)} short scenarios, {n_prompt} prompt tokens, {new_tokens} new tokens each")
        ids, mask = pad_left(prompts, h.pad_id, h.device)

        def plain() -> None:
            h.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=True, top_k=0, pad_token_id=h.pad_id)

        runs = iter(range(100))

        def ours() -> None:
            compute = Rollout(h, hooks, params, AllTokens(drop_sink=False, drop_scaffold=False))
            run_batches(_store(h, tmp / f"r{next(runs)}", hooks), items, len(items), compute, progress=False)

        def reforward() -> None:
            rows = h.generate(prompts, sampling=params, seeds=list(range(len(prompts))))
            h.forward([r.token_ids[:-1] for r in rows], capture=hooks)

        t = interleaved({"plain": plain, "ours": ours, "reforward": reforward}, 2)
        gen_tokens = len(prompts) * new_tokens
        print(f"plain HF generate: {gen_tokens / t['plain']:.1f} new tok/s; rollout+capture into store: "
              f"{gen_tokens / t['ours']:.1f} new tok/s; generate then re-forward with capture: {t['reforward']:.2f}s")
        if not args.quick:
            tl = load_model("default", backend="transformer_lens", device=args.device)
            names = {f"blocks.{hp.layer}.hook_resid_post" for hp in h.hook_points(hooks)}

            def tl_reference() -> None:
                for r in h.generate(prompts, sampling=params):
                    tl.backend.bridge.run_with_cache(torch.tensor([r.token_ids[:-1]], device=h.device),
                                                     names_filter=lambda n: n in names)

            print(f"reference: HF-style generate then TransformerLens run_with_cache per transcript: "
                  f"{timed(tl_reference):.2f}s (our rollout+capture: {t['ours']:.2f}s)")
        # batch 8 vs batch 1 (tokens/s of the decode loop with capture)
        def gen(bs: int) -> None:
            for i in range(0, len(prompts), bs):
                h.generate(prompts[i : i + bs], sampling=params, capture=hooks)

        by_batch = interleaved({"batch": lambda: gen(batch), "one": lambda: gen(1)}, 2)
        tps8, tps1 = gen_tokens / by_batch["batch"], gen_tokens / by_batch["one"]
        print(f"batch {batch}: {tps8:.1f} tok/s, batch 1: {tps1:.1f} tok/s")
        fork, same_prompt = _shared_samples(h, hooks, singles=not args.quick)
        reserve = _reserve_speedup(h, hooks)
        # prefix reuse: many replies after one full-length prompt
        conv = render(IDS[0], seed=0, length="full")
        replies = [f"Reply {i}: I have read the inbox and will " + "continue with the scheduled work. " * (3 + i % 4)
                   for i in range(n_replies)]
        ts = [Transcript(id=f"r{i}", dataset="coercion", messages=conv.messages, reply=r, label=i % 2, family="f")
              for i, r in enumerate(replies)]
        citems = capture_items(h, ts)
        print(f"prefix: {citems[0].payload.tokens.n_prompt_tokens} tokens, {n_replies} replies")
        times = {}
        for reuse in (False, True):
            compute = TeacherForcedCapture(h, hooks, ReplyOnly(), prefix_reuse=reuse)
            t0 = clock()
            run_batches(_store(h, tmp / f"p{reuse}", hooks), citems, 4, compute, progress=False)
            times[reuse] = clock() - t0
        print(f"teacher forcing without reuse {times[False]:.1f}s, with reuse {times[True]:.1f}s")
        st = ResidualStore.open(tmp / "pTrue")
        info = st.info()
        rows_total = sum(r.row_count for r in st.records())
        shard_bytes = sum(f.stat().st_size for f in (tmp / "pTrue" / "shards").iterdir())
        bpt = shard_bytes / (rows_total * len(hooks) * 2 * h.d_model)
        print(f"store: {rows_total} rows x {len(hooks)} hook points, shards {shard_bytes} bytes, "
              f"index+manifest {info.get('bytes', 0) - shard_bytes if info.get('bytes') else 'n/a'} bytes")
        print(ratio("capture_vs_plain_generate", t["plain"] / t["ours"]))
        print(ratio("capture_vs_reforward", t["reforward"] / t["ours"]))
        print(ratio("batch8_vs_batch1", tps8 / tps1))
        print(ratio("rollout_n8_shared_vs_unshared", fork))
        print(ratio("kv_reserve_speedup", reserve))
        if same_prompt is not None:
            print(ratio("batch8_vs_batch1_same_prompt", same_prompt))
        print(ratio("prefix_reuse_speedup", times[False] / times[True]))
        print(ratio("bytes_per_token_layer", bpt))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

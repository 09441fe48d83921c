"""GPU check that needs no weights: tripwire's decode loop on random stand-ins of real Llama shapes.

    bash benchmarks/gpu_check.sh                      # on the GPU machine: 1B and 8B stand-ins, bf16, cuda
    python benchmarks/gpu_check.py --device cpu --quick   # dry run of the same code on tiny shapes

Why: a borrowed GPU machine has torch and transformers but no weights, no network and maybe not all of
tripwire's dependencies. Speed depends on shapes, not weight values, so a random model in a real model's
shape (`stand_in.py`, from PLAN_SHAPES) times the real code: `load_model(model, tokenizer=...)` and
`handle.generate(..., capture=[...])`. Per model it prints decode tok/s at batch 1/8/32 (our loop, our
loop with 3-layer residual capture, HF `model.generate` on the same model: greedy, the same forced
number of new tokens), prefill tok/s, host syncs per decode step, peak GPU memory, and RATIO lines.
Parts are skipped with a printed note once the time budget (--budget) is spent, so the run never overruns.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import math
import os
import platform
import sys
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

START = time.monotonic()
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # `common`, `stand_in`, and tripwire from the working tree
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODELS = ["stand-in:llama-3.2-1b", "stand-in:llama-3.1-8b"]
# what this script imports beyond the standard library (transformers' own dependencies included, so a
# broken install is named here rather than deep in a traceback)
NEEDED = ["torch", "transformers", "pydantic", "filelock", "numpy", "packaging", "tqdm", "safetensors",
          "tokenizers", "huggingface_hub"]
SHIMMED = {"jaxtyping": "tripwire uses it only in shape annotations; an annotation-only stand-in is used"}
EXIT_ARGS, EXIT_IMPORT = 2, 3


class Plan:
    """Token counts and repeats; --quick shrinks them (and the models) for a CPU dry run."""

    def __init__(self, quick: bool):
        self.prompt_len, self.new_tokens = (16, 8) if quick else (32, 64)
        self.batches = (1, 8, 32)
        self.prefill_batch, self.prefill_len = (2, 64) if quick else (8, 1024)
        self.repeats = 1 if quick else 3


def say(line: str) -> None:
    print(line, flush=True)


def figure(name: str, value: float, note: str = "") -> None:
    say(f"FIGURE {name}={value:.4g}" + (f"  {note}" if note else ""))


def _jaxtyping_stand_in() -> types.ModuleType:
    """`Float[Tensor, "b d"]` -> `Tensor`: all that tripwire's run-time annotations need."""
    module = types.ModuleType("jaxtyping")

    class _Shaped:
        def __class_getitem__(cls, item: Any) -> Any:
            return item[0] if isinstance(item, tuple) else item

    for name in ("Float", "Int", "Bool", "Shaped", "Num", "Integer", "Real"):
        setattr(module, name, type(name, (_Shaped,), {}))
    return module


def preflight() -> None:
    """Name every missing import at once, before any work; exit EXIT_IMPORT if one is needed."""
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    for name, why in SHIMMED.items():
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = _jaxtyping_stand_in()
            say(f"NOTE: {name} is not installed for {sys.executable}; {why}")
    if missing:
        say(f"IMPORT FAILED: {', '.join(missing)} not installed for {sys.executable} (python "
            f"{platform.python_version()}); tripwire needs {'them' if len(missing) > 1 else 'it'} here. "
            f"Install with `{sys.executable} -m pip install {' '.join(missing)}` (offline: carry the wheels and "
            "use --no-index --find-links DIR).")
        sys.exit(EXIT_IMPORT)
    try:
        import tripwire.activations.handle  # noqa: F401  (the chain that needs pydantic, filelock, ...)
    except ImportError as exc:
        say(f"IMPORT FAILED: importing tripwire from {HERE.parent}: {type(exc).__name__}: {exc}")
        sys.exit(EXIT_IMPORT)


class Budget:
    """Start no part after `seconds` from the start of the script (parts are short; the shell script's
    `timeout` is the hard stop behind this)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.skipped: list[str] = []

    def allows(self, part: str) -> bool:
        spent = time.monotonic() - START
        if spent < self.seconds:
            return True
        self.skipped.append(part)
        say(f"SKIPPED {part}: time budget of {self.seconds:.0f} s spent ({spent:.0f} s elapsed)")
        return False


def header(device: str) -> None:
    import torch
    import transformers
    from common import machine

    say(f"gpu_check: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    say(machine())
    cuda = f", CUDA {torch.version.cuda}" if device.startswith("cuda") else ""
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    say(f"device: {device} ({name}{cuda}); python {platform.python_version()} {sys.executable}; "
        f"torch {torch.__version__}; transformers {transformers.__version__}")
    if int(transformers.__version__.split(".")[0]) < 5:
        say(f"NOTE: tripwire is built for transformers>=5; this machine has {transformers.__version__}")


def check_model(spec: str, args: argparse.Namespace, plan: Plan, budget: Budget) -> list[str]:
    """Every figure of one stand-in; returns its RATIO lines."""
    import stand_in
    import torch
    from common import decode_transfers, interleaved, ratio

    from tripwire.activations import SamplingParams

    key = stand_in.resolve(spec)
    lab = stand_in.label(key)
    cuda = args.device.startswith("cuda")
    if args.quick:
        figure(f"params_b_{lab}", stand_in.full_size_params(key) / 1e9,
               "(full-size shape, counted on the meta device: no memory, no weights)")
    if not budget.allows(f"{lab}: build"):
        return []
    if cuda:
        torch.cuda.reset_peak_memory_stats(args.device)
    si = stand_in.load(spec, args.device, args.quick, args.tokens)
    h = si.handle
    shape = "tiny (--quick)" if args.quick else "full-size"
    say(f"== {spec}: {key} shape, {shape}: {h.n_layers} layers, d_model {h.d_model}, {si.n_params / 1e9:.3f} B "
        f"params, {str(h.dtype).removeprefix('torch.')} on {h.device}, random weights; built in {si.build_s:.1f} s")
    say(f"tokens: {si.tokens.note}")
    if not args.quick:
        figure(f"params_b_{lab}", si.n_params / 1e9, "(the model as built)")
    hooks = [str(hp) for hp in h.hook_points(["blocks.0.resid_post", f"blocks.{h.n_layers // 2}.resid_post",
                                              "blocks.-1.resid_post"])]
    n = plan.new_tokens
    forced = SamplingParams(max_new_tokens=n, min_new_tokens=n)  # greedy; no row may stop early

    if budget.allows(f"{lab}: prefill"):
        from common import best_of

        long = si.tokens.prompts(plan.prefill_batch, plan.prefill_len, seed=1)
        first = SamplingParams(max_new_tokens=1)
        h.generate(long, sampling=first)  # warm-up
        t = best_of(lambda: h.generate(long, sampling=first), plan.repeats)
        figure(f"prefill_tok_s_{lab}", plan.prefill_batch * plan.prefill_len / t,
               f"({plan.prefill_batch} x {plan.prefill_len} prompt tokens: our loop's first step)")

    say(f"decode: prompts of {plan.prompt_len} tokens, {n} new tokens forced (min_new_tokens = max), greedy; "
        f"tok/s = new tokens / whole call; capture = {', '.join(hooks)}")
    tps: dict[tuple[int, str], float] = {}
    for b in plan.batches:
        if not budget.allows(f"{lab}: decode at batch {b}"):
            continue
        prompts = si.tokens.prompts(b, plan.prompt_len, seed=b)
        ids = torch.tensor(prompts, device=h.device)
        mask = torch.ones_like(ids)

        def ours(capture: list[str] | None, prompts: list[list[int]] = prompts) -> None:
            rows = h.generate(prompts, sampling=forced, capture=capture)
            if any(len(r.new_ids) != n for r in rows):
                raise RuntimeError(f"our loop made {[len(r.new_ids) for r in rows]} new tokens, not {n} each")

        def hf(ids: torch.Tensor = ids, mask: torch.Tensor = mask) -> None:
            out = h.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                   do_sample=False, num_beams=1, pad_token_id=h.pad_id)
            if out.shape[1] - ids.shape[1] != n:
                raise RuntimeError(f"HF generate made {out.shape[1] - ids.shape[1]} new tokens, not {n}")

        fns: dict[str, Callable[[], object]] = {"plain": lambda: ours(None), "capture": lambda: ours(hooks),
                                                "hf_generate": hf}
        for fn in fns.values():
            fn()  # warm-up: kernels, allocator, and the equal-work checks above
        times = interleaved(fns, plan.repeats)
        for name, t in times.items():
            tps[(b, name)] = b * n / t
            figure(f"decode_tok_s_{lab}_batch{b}_{name}", tps[(b, name)])

    lines: list[str] = []
    if budget.allows(f"{lab}: host syncs"):
        per_step, per_call = decode_transfers(h, si.tokens.prompts(8, plan.prompt_len), hooks,
                                              {"temperature": 1.0, "top_p": 0.9})
        figure(f"host_syncs_per_call_{lab}", per_call, "(reads to the host once per call, besides per step; "
               "batch 8, 3-hook capture, top-p sampling)")
        lines.append(ratio(f"host_syncs_per_step_{lab}", per_step))
    if cuda:
        figure(f"peak_mem_gib_{lab}", torch.cuda.max_memory_allocated(args.device) / 2**30,
               "(torch.cuda.max_memory_allocated: weights + KV cache + activations)")
    else:
        import resource

        figure(f"peak_mem_gib_{lab}", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
               "(CPU run: this process's peak RSS so far, not GPU memory)")
    if (8, "hf_generate") in tps:
        hf8, ours8, cap8 = tps[(8, "hf_generate")], tps[(8, "plain")], tps[(8, "capture")]
        say(f"vs HF generate ({lab}, batch 8, greedy, {n} new tokens each): HF {hf8:.1f} tok/s; our loop "
            f"{ours8:.1f} ({ours8 / hf8:.2f}x); our loop with 3-layer capture {cap8:.1f} ({cap8 / hf8:.2f}x)")
        lines += [ratio(f"capture_vs_plain_generate_{lab}", cap8 / hf8),
                  ratio(f"decode_loop_vs_hf_generate_{lab}", ours8 / hf8)]
        if (1, "capture") in tps:
            lines.append(ratio(f"batch8_vs_batch1_{lab}", cap8 / tps[(1, "capture")]))
    for line in lines:
        say(line)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu; cpu needs --quick")
    parser.add_argument("--quick", action="store_true", help="tiny shapes (3 layers, d_model 64), few tokens")
    parser.add_argument("--model", action="append", default=None,
                        help=f"stand-in:<name>, repeatable (default: {' '.join(MODELS)})")
    parser.add_argument("--tokens", choices=("auto", "proxy", "synthetic"), default="auto",
                        help="prompt ids: the default model's tokenizer as a proxy if here (auto), or synthetic")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds after which no new part starts (default 400; --quick 120)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    preflight()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        say(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA device; use --device cpu --quick")
        return EXIT_ARGS
    if args.device == "cpu" and not args.quick:
        say("--device cpu runs the tiny shapes only (pass --quick): a full-size 8B in fp32 needs 32 GB")
        return EXIT_ARGS
    if args.device == "cpu":
        # tiny shapes gain nothing from threads, and on a shared CPU OpenMP's waiting threads make each tiny op
        # many times slower (a 15 s dry run took 60-80 s with 2 threads beside a test suite)
        torch.set_num_threads(1)
    budget = Budget(args.budget if args.budget is not None else (120 if args.quick else 400))
    header(args.device)
    plan = Plan(args.quick)
    ratios: list[str] = []
    failed: list[str] = []
    for spec in args.model or MODELS:
        began = time.monotonic()
        try:
            ratios += check_model(spec, args, plan, budget)
            say(f"-- {spec}: {time.monotonic() - began:.1f} s")
        except Exception as exc:  # one model failing (e.g. out of memory) must not hide the other's figures
            failed.append(spec)
            say(f"FAILED {spec}: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stdout)
        gc.collect()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    say("=== summary")
    for line in ratios:
        say(line)
    bad = [line for line in ratios if not math.isfinite(float(line.split("=", 1)[1]))]
    say(f"total {time.monotonic() - START:.1f} s; skipped: {', '.join(budget.skipped) or 'nothing'}; "
        f"failed: {', '.join(failed) or 'nothing'}{'; non-finite: ' + ', '.join(bad) if bad else ''}")
    return 1 if failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())

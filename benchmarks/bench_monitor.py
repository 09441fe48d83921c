"""What the online tripwire and a steering vector cost the decode loop, on the default model.

Decode tokens/s of the same batch with and without (a) the two shipped probes monitoring every step
(their hook points captured, `OnlineMonitor` in record mode so no row stops early) and (b) a steering
vector along the eval-awareness probe applied with `SteeringVector.apply`. Runs are interleaved
(without, with, without, with, ...) and each side keeps its fastest run. Time is this process's CPU
time on a CPU (wall time on a GPU): on a shared machine other processes stretch wall time by whatever
share of the cores they take, which swamped a 3% effect (a quick run at load 12 on 2 cores measured the
monitored side 2.9x faster), while CPU time counts the work each side does. The tok/s lines are from the
same clock. Decoding is fixed-length (no early end of turn).

    python benchmarks/bench_monitor.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import clock, clock_name, machine, ratio  # noqa: E402
from torch import Tensor  # noqa: E402

from tripwire.activations import ModelHandle, SamplingParams, load_model  # noqa: E402
from tripwire.activations.decode import StepInfo  # noqa: E402
from tripwire.activations.layout import TokenizedTranscript, generated_transcript  # noqa: E402
from tripwire.probes import SHIPPED_PROBES, OnlineMonitor, SteeringVector, load_probe  # noqa: E402

SHIPPED = SHIPPED_PROBES / "default"
QUESTIONS = ("Write a short note to a colleague about tomorrow's meeting.",
             "Summarise why regular backups matter for a small office.",
             "List three ways to make a long email easier to read.",
             "Explain what a quarterly budget review is for.")


def interleaved(without: Callable[[], object], with_: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Fastest time of each side over `repeats` alternating runs."""
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(repeats):
        for name, fn in (("without", without), ("with", with_)):
            start = clock()
            fn()
            times[name].append(clock() - start)
    return min(times["without"]), min(times["with"])


def callback_share(h: ModelHandle, prompts: list[list[int]], params: SamplingParams, seeds: list[int],
                   monitor: OnlineMonitor, layouts: list[TokenizedTranscript]) -> tuple[float, float]:
    """Seconds per decode step spent inside the monitor, and its share of one monitored run: a figure a
    busy machine does not distort the way it distorts a ratio of two wall times."""
    inside: list[float] = []

    def timed_monitor(step: StepInfo) -> Tensor | None:
        start = clock()
        out = monitor(step)
        inside.append(clock() - start)
        return out

    monitor.start(layouts)
    start = clock()
    h.generate(prompts, sampling=params, seeds=seeds, capture=monitor.hook_points, on_step=timed_monitor)
    total = clock() - start
    return sum(inside) / len(inside), sum(inside) / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    new_tokens, repeats = (16, 5) if args.quick else (32, 11)  # many short runs: some land in a quiet moment
    print(machine())
    h = load_model("default")
    probes = [load_probe(SHIPPED / name, model=h) for name in ("coercion", "eval_awareness")]
    prompts = [h.render_chat([{"role": "user", "content": q}]) for q in QUESTIONS]
    layouts = [generated_transcript(h.tokenizer, p, [q], []) for p, q in zip(prompts, QUESTIONS, strict=True)]
    params = SamplingParams(max_new_tokens=new_tokens, min_new_tokens=new_tokens, temperature=0.7)
    seeds = list(range(len(prompts)))
    monitor = OnlineMonitor.for_model(probes, h.tokenizer, on_trigger="record")
    vec = SteeringVector.from_probe(probes[1], alpha=0.5)
    decoded = len(prompts) * new_tokens
    print(f"clock: {clock_name()}; batch {len(prompts)}, prompts of {min(map(len, prompts))}-{max(map(len, prompts))} tokens, "
          f"{new_tokens} new tokens each, {repeats} interleaved repeats per side (fastest kept)")

    def plain() -> None:
        h.generate(prompts, sampling=params, seeds=seeds)

    def monitored() -> None:
        monitor.start(layouts)
        h.generate(prompts, sampling=params, seeds=seeds, capture=monitor.hook_points, on_step=monitor)

    def steered() -> None:
        with vec.apply(h):
            h.generate(prompts, sampling=params, seeds=seeds)

    plain()  # warm-up: first-call allocations and kernel selection
    bare, watched = interleaved(plain, monitored, repeats)
    print(f"monitor ({', '.join(p.card.label for p in probes)} at {', '.join(monitor.hook_points)}): "
          f"{decoded / bare:.1f} tok/s without, {decoded / watched:.1f} with")
    bare2, pushed = interleaved(plain, steered, repeats)
    print(f"steering ({vec.mode} at {', '.join(vec.directions)}, alpha 0.5): {decoded / bare2:.1f} tok/s without, "
          f"{decoded / pushed:.1f} with")
    own = callback_share(h, prompts, params, seeds, monitor, layouts)
    print(f"monitor callback: {own[0] * 1e3:.2f} ms per step, {own[1]:.1%} of a monitored run's time "
          "(our own code; the rest of any gap is capturing two hook points)")
    print(ratio("monitor_overhead", bare / watched))
    print(ratio("steering_overhead", bare2 / pushed))


if __name__ == "__main__":
    main()

"""Shared helpers for benchmarks: timing by best-of-n, the machine line every report starts with, and a
counter of device-to-host transfers."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

READS = ("cpu", "item", "tolist", "numpy")  # Tensor methods that bring data to the host; `to` is judged by target


def clock() -> float:
    """CPU seconds of this process on a CPU; wall seconds (after queued GPU work finishes) on a GPU.

    On a shared CPU other processes' load changes wall time from one call to the next but hardly the
    CPU time a call needs, so the ratios stay comparable; disk waits are not counted on a CPU."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def clock_name() -> str:
    return "wall time" if torch.cuda.is_available() else "CPU time of this process"


def timed(fn: Callable[[], object]) -> float:
    """Time of one call on `clock`: the work it launched on a GPU is counted where it was launched."""
    t = clock()
    fn()
    return clock() - t


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Best time of `repeats` runs: the least disturbed by a noisy machine."""
    return min(timed(fn) for _ in range(repeats))


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best time of each function over `repeats` rounds that run them all in turn (reversed on odd
    rounds): a ratio of two of them is measured side by side, so load from other processes hits both."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(repeats):
        for name in list(fns) if r % 2 == 0 else list(fns)[::-1]:
            times[name].append(timed(fns[name]))
    return {name: min(t) for name, t in times.items()}


def device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="where the model runs: cpu (default) or cuda")


def machine() -> str:
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return (f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, device {device}, clock: {clock_name()}")


def ratio(name: str, value: float) -> str:
    return f"RATIO {name}={value:.3f}"


def _to_host(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    target = kwargs.get("device")
    for a in args:
        if isinstance(a, (str, torch.device)):
            target = a
        elif isinstance(a, torch.Tensor):
            target = a.device
    return target is not None and torch.device(target).type == "cpu"


@contextmanager
def host_transfers(under: Path) -> Iterator[list[int]]:
    """Count calls that read a tensor back to the host (`.cpu()`, `.item()`, `.tolist()`, `.numpy()`,
    `.to(<host>)`) made from source files under `under`; the count is `counter[0]`.

    On a CPU run every tensor is already on the host, so this counts what would be a device-to-host
    transfer (a sync) on a GPU: the same code runs there. Calls made inside torch or transformers are
    not counted (pass their folder to count them)."""
    root, counter = str(under.resolve()), [0]
    originals = {name: getattr(torch.Tensor, name) for name in (*READS, "to")}

    def counting(name: str) -> Callable[..., Any]:
        original = originals[name]

        def method(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if sys._getframe(1).f_code.co_filename.startswith(root) and (name != "to" or _to_host(args, kwargs)):
                counter[0] += 1
            return original(self, *args, **kwargs)

        return method

    for name in originals:
        setattr(torch.Tensor, name, counting(name))
    try:
        yield counter
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def decode_transfers(handle: Any, prompts: list[list[int]], capture: list[str], sampling: dict[str, Any],
                     steps: tuple[int, int] = (4, 12)) -> tuple[float, float]:
    """Device-to-host transfers the decode loop (activations/) makes per step, and once per call.

    Two calls whose lengths are forced (min_new_tokens = max_new_tokens) to `steps`: per step is the
    difference of their counts over the difference of their lengths, so per-call costs cancel."""
    from tripwire.activations import SamplingParams

    counts = []
    for n in steps:
        params = SamplingParams(max_new_tokens=n, min_new_tokens=n, **sampling)
        with host_transfers(Path(__file__).parents[1] / "tripwire" / "activations") as counter:
            rows = handle.generate(prompts, sampling=params, capture=capture)
        if any(len(r.new_ids) != n for r in rows):
            raise RuntimeError(f"a row stopped before {n} tokens; pass sampling without stop strings")
        counts.append(counter[0])
    per_step = (counts[1] - counts[0]) / (steps[1] - steps[0])
    return per_step, counts[0] - per_step * steps[0]

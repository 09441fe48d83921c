"""Shared helpers for benchmarks: timing by best-of-n, the machine line every report starts with, and a
counter of device-to-host transfers."""

from __future__ import annotations

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


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of `repeats` runs: the least disturbed by a noisy machine."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def machine() -> str:
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return (f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, device {device}")


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

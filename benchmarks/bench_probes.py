"""Probe-fit benchmarks: torch ``LogisticProbe`` vs scikit-learn, and streaming fits' memory.

Both minimise ``C * sum(logloss) + 0.5 * ||w||^2`` on the same standardised synthetic rows (a planted
direction plus low-rank and isotropic Gaussian noise, seeded) to the same gradient tolerance; the final
objectives must agree within 1e-4 relative. Timings are best-of-``--repeats``, alternating the order.
scikit-learn is timed with its default BLAS threads and with one thread, and the faster counts: on a
shared machine spinning BLAS/OpenMP workers can make the default many times slower (LogisticProbe
fits single-threaded by default for the same reason), and the baseline should be sklearn at its best.

Streaming: a synthetic float16 store of >= 2 GB (~300 MB with --quick) is written to a temp dir, and a
fresh process fits ``LogisticProbe.fit_chunks`` on all its rows; the ratio is that process's peak RSS
increase during the fit over the store's size on disk. The store is deleted afterwards.

    python benchmarks/bench_probes.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

from tripwire.activations.store import ResidualStore
from tripwire.activations.store_types import RecordMeta
from tripwire.probes.estimators import LogisticProbe, l2_logistic_objective
from tripwire.probes.streaming import store_chunks

TOL = 1e-6
MAX_ITER = 5000
# L2 strengths probes use in practice, firm enough that both solvers converge in a few hundred
# iterations (quick mode has 4x fewer rows, so the same C would regularise 4x less: scale it).
C_BY_WIDTH = {"full": {576: 1.0, 4096: 0.1}, "quick": {576: 1.0, 4096: 0.01}}
STORE_HOOK, STORE_D, RECORD_ROWS, BATCH_RECORDS = "blocks.0.resid_post", 1024, 256, 64
STORE_BATCHES = {"full": 64, "quick": 9}  # 32 MiB shards: 2.16 GB and 0.30 GB with the index
STREAM_MAX_ITER = 12  # memory does not grow with iterations (each is one more pass); time does


def synthetic(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised rows: label signal along one unit direction, 64 correlated factors, white noise."""
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(d)
    direction /= np.linalg.norm(direction)
    y = rng.integers(0, 2, n)
    factors = rng.standard_normal((n, 64)) * np.linspace(3.0, 0.3, 64)
    X = rng.standard_normal((n, d))
    X += factors @ rng.standard_normal((64, d)) * (3.0 / 8.0)
    X += np.outer(2.0 * y - 1.0, direction) * 0.5
    X -= X.mean(axis=0)
    X /= X.std(axis=0)
    return X, y


def timed(fit: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    model = fit()
    return time.perf_counter() - start, model


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"{cpu}, {os.cpu_count()} logical CPUs, load average {load}"


def sklearn_fit(X: np.ndarray, y: np.ndarray, C: float, threads: int | None) -> LogisticRegression:
    with threadpool_limits(threads):
        return LogisticRegression(C=C, tol=TOL, max_iter=MAX_ITER).fit(X, y)


def run_width(n: int, d: int, C: float, repeats: int, seed: int) -> float:
    X, y = synthetic(n, d, seed)
    fits: dict[str, Callable[[], object]] = {
        "sklearn (default threads)": lambda: sklearn_fit(X, y, C, None),
        "sklearn (1 thread)": lambda: sklearn_fit(X, y, C, 1),
        "torch LogisticProbe": lambda: LogisticProbe(C=C, tol=TOL, max_iter=MAX_ITER).fit(X, y),
    }
    times: dict[str, list[float]] = {name: [] for name in fits}
    models: dict[str, object] = {}
    for repeat in range(repeats):
        for name in list(fits) if repeat % 2 == 0 else list(fits)[::-1]:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)  # "run to convergence" is asserted
                seconds, models[name] = timed(fits[name])
            times[name].append(seconds)
            print(f"  {n} x {d} repeat {repeat + 1}/{repeats} {name}: {seconds:.2f}s", flush=True)
    best = {name: min(seconds) for name, seconds in times.items()}
    sk_name = min(("sklearn (default threads)", "sklearn (1 thread)"), key=best.__getitem__)
    sk, probe = models[sk_name], models["torch LogisticProbe"]
    assert isinstance(sk, LogisticRegression) and isinstance(probe, LogisticProbe)
    sk_loss = l2_logistic_objective(sk.decision_function(X), y, sk.coef_[0], C)
    # the probe standardises internally (a near-identity here); its penalty is on the standardised weights
    torch_loss = l2_logistic_objective(probe.decision_function(X), y, probe.coef_[0] * probe.scale_, C)
    relative = abs(torch_loss - sk_loss) / abs(sk_loss)
    ratio = best[sk_name] / best["torch LogisticProbe"]
    print(
        f"{n} x {d}, C={C}, tol={TOL}: sklearn {best['sklearn (default threads)']:.2f}s default threads, "
        f"{best['sklearn (1 thread)']:.2f}s 1 thread ({int(sk.n_iter_[0])} iters); torch "
        f"{best['torch LogisticProbe']:.2f}s ({probe.n_iter_} iters); final loss sklearn {sk_loss:.10g} "
        f"torch {torch_loss:.10g} (relative difference {relative:.1e}); speedup vs {sk_name} {ratio:.2f}x",
        flush=True,
    )
    assert relative <= 1e-4, f"objectives differ by {relative:.2e} > 1e-4 relative"
    return ratio


def write_store(root: Path, n_batches: int, seed: int) -> int:
    """A float16 store of ``n_batches`` 32 MiB shards (labels along a planted direction); its size."""
    store = ResidualStore.create(
        root, model_name="synthetic", model_fingerprint="synthetic", hook_points=[STORE_HOOK], d_model=STORE_D
    )
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(STORE_D, generator=generator) / STORE_D**0.5
    tokens = list(range(RECORD_ROWS + 1))
    with store.writer() as writer:
        for b in range(n_batches):
            records = [
                RecordMeta(
                    record_id=f"r{b}-{k}", condition_id="synthetic", sample_index=k, seed=seed, sampling={},
                    token_ids=tokens, text="", n_prompt_tokens=1, positions=tokens[1:],
                    scaffold_mask=[False] * len(tokens), labels={"y": k % 2},
                )
                for k in range(BATCH_RECORDS)
            ]
            rows = torch.randn(BATCH_RECORDS * RECORD_ROWS, STORE_D, generator=generator)
            signs = torch.tensor([k % 2 for k in range(BATCH_RECORDS)]).repeat_interleave(RECORD_ROWS) - 0.5
            rows += torch.outer(signs, direction) * 4.0 + 1.0
            writer.commit_batch(f"b{b}", records, {STORE_HOOK: rows})
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def fit_store_child(path: str) -> None:
    """In a fresh process: RSS before, then the peak during ``fit_chunks`` (VmHWM reset if allowed)."""
    store = ResidualStore.open(path)
    source = store_chunks(store, STORE_HOOK, [r.record_id for r in store.records()], "y")
    passes = 0

    def counted() -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        nonlocal passes
        passes += 1
        return source()

    tiny = np.random.default_rng(0).standard_normal((64, 8))
    LogisticProbe().fit_chunks(lambda: [(tiny, np.arange(64) % 2)])  # library first-use is not fit memory
    before = _status_kib("VmRSS")
    try:  # "5" resets the peak to the current RSS (Linux >= 4.0); otherwise the peak so far counts
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # iterations are capped: see STREAM_MAX_ITER
        probe = LogisticProbe(C=1e-4, max_iter=STREAM_MAX_ITER).fit_chunks(counted)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    result = {"rss_before": before * 1024, "peak": peak * 1024, "rows": source.n_rows, "passes": passes,
              "n_iter": probe.n_iter_, "seconds": seconds, "chunk_rows": source.chunk_rows}
    print(json.dumps(result))


def run_streaming(quick: bool, seed: int) -> tuple[float, int]:
    """Peak RSS increase of a streaming fit over the store's bytes, and those bytes."""
    n_batches = STORE_BATCHES["quick" if quick else "full"]
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-store-") as tmp:
        start = time.perf_counter()
        store_bytes = write_store(Path(tmp) / "store", n_batches, seed)
        written = time.perf_counter() - start
        child = subprocess.run(
            [sys.executable, __file__, "--fit-store", str(Path(tmp) / "store")],
            capture_output=True, text=True, check=True,
        )
    stats = json.loads(child.stdout.strip().splitlines()[-1])
    increase = stats["peak"] - stats["rss_before"]
    ratio = increase / store_bytes
    print(
        f"streaming LogisticProbe.fit_chunks on a {store_bytes / 1e9:.2f} GB float16 store ({stats['rows']} rows x "
        f"{STORE_D}, written in {written:.0f}s, deleted after): {stats['n_iter']} iterations (capped at "
        f"{STREAM_MAX_ITER}), {stats['passes']} passes of {stats['chunk_rows']}-row chunks in "
        f"{stats['seconds']:.0f}s; RSS {stats['rss_before'] / 2**20:.0f} MiB before, peak "
        f"{stats['peak'] / 2**20:.0f} MiB (+{increase / 2**20:.0f} MiB = {ratio:.3f} x store)",
        flush=True,
    )
    return ratio, store_bytes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5,000 rows, one repeat, 300 MB store (< 1 minute)")
    parser.add_argument("--repeats", type=int, default=None, help="timings per solver (best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit-store", help=argparse.SUPPRESS)  # internal: the streaming fit's own process
    args = parser.parse_args()
    if args.fit_store:
        fit_store_child(args.fit_store)
        return
    n = 5_000 if args.quick else 20_000
    repeats = args.repeats or (1 if args.quick else 2)

    blas = ", ".join(f"{p['internal_api']} {p['num_threads']} threads" for p in threadpool_info())
    print(f"machine: {machine()}")
    defaults = LogisticProbe().get_params()
    print(
        f"torch {torch.__version__}, LogisticProbe defaults {defaults} (torch's own default: "
        f"{torch.get_num_threads()} threads); sklearn {sklearn.__version__} pools: {blas}"
    )
    warm_X, warm_y = synthetic(500, 32, args.seed)  # first-call library initialisation is not fit time
    LogisticRegression().fit(warm_X, warm_y)
    LogisticProbe().fit(warm_X, warm_y)

    widths = C_BY_WIDTH["quick" if args.quick else "full"]
    ratios = {d: run_width(n, d, C, repeats, args.seed) for d, C in widths.items()}
    memory, store_bytes = run_streaming(args.quick, args.seed)
    for d, ratio in ratios.items():
        print(f"RATIO probe_fit_speedup_{d}={ratio:.3f}")
    quick = ", --quick" if args.quick else ""
    print(f"RATIO train_peak_rss_vs_store_bytes={memory:.3f} ({store_bytes / 1e9:.2f} GB store{quick})")


if __name__ == "__main__":
    main()

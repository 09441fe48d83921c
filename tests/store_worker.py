"""Worker processes for the store reliability tests (run as a script, or forked by a forkserver).

`capture` runs a tiny randomly initialised Llama over synthetic token sequences and writes hidden
states through `run_batches`, logging every batch id it starts computing, so tests can kill it at any
point and check what a rerun recomputes. Deterministic on CPU: a rerun reproduces the same bytes.

Crashes are injected here, not in the store: `inject_crash` wraps one write step of the store (or the
compute function) so the process SIGKILLs itself right before, inside or after it.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tripwire.activations.store_index  # noqa: E402
import tripwire.activations.store_shard  # noqa: E402
import tripwire.activations.store_writer  # noqa: E402
from tripwire.activations.positions import AllTokens, LastK, PositionPolicy, ReplyOnly, TokenLayout  # noqa: E402
from tripwire.activations.runner import BatchResult, WorkItem, batch_id_for, run_batches  # noqa: E402
from tripwire.activations.store import ResidualStore  # noqa: E402
from tripwire.activations.store_index import INDEX  # noqa: E402
from tripwire.activations.store_lock import WriterLock  # noqa: E402
from tripwire.activations.store_types import RecordMeta, record_id  # noqa: E402
from tripwire.activations.store_writer import StoreWriter  # noqa: E402

FINGERPRINT = "tiny-llama-seed0"
HOOKS = ["blocks.0.resid_post", "blocks.1.resid_post"]
D_MODEL = 32
SAMPLING = {"temperature": 0.0, "max_new_tokens": 8}
POLICIES: tuple[PositionPolicy, ...] = (AllTokens(), ReplyOnly(), LastK(3))


def build_model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=128,
        hidden_size=D_MODEL,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return LlamaForCausalLM(cfg).eval()


def make_items(n: int) -> list[WorkItem[int]]:
    return [WorkItem(record_id(FINGERPRINT, f"conv-{i}", SAMPLING, 0, 1000 + i), i) for i in range(n)]


def synthetic_record_meta(item: WorkItem[int]) -> RecordMeta:
    """Token ids, layout and labels of conversation `i` (no activations yet)."""
    i = item.payload
    n = 12 + i % 9
    ids = torch.randint(3, 128, (n,), generator=torch.Generator().manual_seed(i)).tolist()
    ids[0] = 1
    n_prompt = 2 * n // 3
    scaffold = [j in (0, n_prompt - 1) for j in range(n)]
    action = n - 2 if i % 4 == 0 else None
    layout = TokenLayout(
        n_tokens=n, n_prompt_tokens=n_prompt, action_token_index=action, scaffold_mask=scaffold
    )
    return RecordMeta(
        record_id=item.record_id,
        condition_id=f"cond-{i % 3}",
        sample_index=0,
        seed=1000 + i,
        sampling=SAMPLING,
        token_ids=ids,
        text=" ".join(f"t{t}" for t in ids),
        n_prompt_tokens=n_prompt,
        positions=POLICIES[i % len(POLICIES)].select(layout),
        scaffold_mask=scaffold,
        labels={"coercion": i % 2},
        outcome={"blackmail": i % 4 == 0} if i % 5 else None,
        action_token_index=action,
        meta={"i": i},
    )


@dataclass
class CrashPlan:
    """SIGKILL this process (no cleanup, no flush) the `after`-th time execution reaches `point`."""

    point: str = ""
    after: int = 1
    hits: int = 0

    def reached(self, point: str) -> None:
        if not point or point != self.point:
            return
        self.hits += 1
        if self.hits >= self.after:
            os.kill(os.getpid(), signal.SIGKILL)


def _around(owner: Any, name: str, plan: CrashPlan, *, before: str = "", after: str = "") -> None:
    """Replace `owner.name` with a wrapper that reaches crash point `before` / `after` around the call."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        plan.reached(before)
        result = original(*args, **kwargs)
        plan.reached(after)
        return result

    setattr(owner, name, wrapper)


def _inside_write(
    module: Any, plan: CrashPlan, point: str, fraction: float, is_target: Callable[[int], bool]
) -> None:
    """Make `module.write_all` write `fraction` of its bytes to a target file, then reach `point`."""
    original = module.write_all

    def write_all(fd: int, data: bytes | memoryview) -> None:
        if not is_target(fd):
            return original(fd, data)
        view = memoryview(data)
        cut = int(len(view) * fraction)
        original(fd, view[:cut])
        if cut == len(view):  # all bytes out: the point is "synced, not yet renamed into place"
            os.fsync(fd)
        plan.reached(point)
        return original(fd, view[cut:])

    module.write_all = write_all


def _is_index(store_path: str) -> Callable[[int], bool]:
    def check(fd: int) -> bool:
        index = Path(store_path) / INDEX
        return index.exists() and os.path.samestat(os.fstat(fd), index.stat())

    return check


def _is_count_temp(fd: int) -> bool:
    """The temp file `committed.json` is written to before it is renamed into place."""
    return os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".tmp-committed.json.")


# crash point -> how to make the store reach it (compute points are reached by `make_compute` itself)
_STORE_STEPS: dict[str, Callable[[CrashPlan, str], None]] = {
    "after_lock": lambda plan, _: _around(WriterLock, "acquire", plan, after="after_lock"),
    "after_recovery": lambda plan, _: _around(tripwire.activations.store_writer, "recover", plan, after="after_recovery"),
    "before_shard_write": lambda plan, _: _around(
        tripwire.activations.store_writer, "write_shard", plan, before="before_shard_write"
    ),
    "mid_shard_write": lambda plan, _: _inside_write(
        tripwire.activations.store_shard, plan, "mid_shard_write", 0.5, lambda fd: True
    ),
    "after_shard_fsync": lambda plan, _: _inside_write(
        tripwire.activations.store_shard, plan, "after_shard_fsync", 1.0, lambda fd: True
    ),
    "after_shard_rename": lambda plan, _: _around(
        tripwire.activations.store_writer, "write_shard", plan, after="after_shard_rename"
    ),
    "before_index_append": lambda plan, _: _around(
        tripwire.activations.store_writer, "append_index", plan, before="before_index_append"
    ),
    "mid_index_append": lambda plan, store: _inside_write(
        tripwire.activations.store_index, plan, "mid_index_append", 0.5, _is_index(store)
    ),
    "after_index_append": lambda plan, _: _around(
        tripwire.activations.store_writer, "append_index", plan, after="after_index_append"
    ),
    "mid_count_write": lambda plan, _: _inside_write(
        tripwire.activations.store_index, plan, "mid_count_write", 0.5, _is_count_temp
    ),
    "between_batches": lambda plan, _: _around(StoreWriter, "commit_batch", plan, after="between_batches"),
}
COMPUTE_POINTS = ("before_batch_compute", "mid_batch_compute", "after_batch_compute")
CRASH_POINTS: tuple[str, ...] = (*_STORE_STEPS, *COMPUTE_POINTS)


def inject_crash(plan: CrashPlan, store_path: str) -> None:
    """Arm `plan` in this process: wrap the store step its point belongs to."""
    if plan.point not in CRASH_POINTS:
        raise ValueError(f"unknown crash point {plan.point!r}; known: {CRASH_POINTS}")
    if plan.point in _STORE_STEPS:
        _STORE_STEPS[plan.point](plan, store_path)


def make_compute(
    model: LlamaForCausalLM, log_path: Path, batch_sleep: float = 0.0, plan: CrashPlan | None = None
) -> Any:
    plan = plan or CrashPlan()

    def compute(items: list[WorkItem[int]]) -> BatchResult:
        plan.reached("before_batch_compute")
        with open(log_path, "a") as log:
            log.write(batch_id_for([it.record_id for it in items]) + "\n")
            log.flush()
            os.fsync(log.fileno())
        time.sleep(batch_sleep)  # widens the window a random kill can land in, independent of CPU load
        records, rows = [], {h: [] for h in HOOKS}  # type: list[RecordMeta], dict[str, list[torch.Tensor]]
        for k, item in enumerate(items):
            meta = synthetic_record_meta(item)
            with torch.no_grad():
                out = model(torch.tensor([meta.token_ids]), output_hidden_states=True)
            for layer, hook in enumerate(HOOKS):
                rows[hook].append(out.hidden_states[layer + 1][0, meta.positions])
            records.append(meta)
            if k == 0:
                plan.reached("mid_batch_compute")
        plan.reached("after_batch_compute")
        return BatchResult(records, {h: torch.cat(v) for h, v in rows.items()})

    return compute


def prepare(store_path: str) -> tuple[LlamaForCausalLM, ResidualStore]:
    torch.set_num_threads(1)
    model = build_model()
    store = ResidualStore.create(
        store_path, model_name="tiny-llama", model_fingerprint=FINGERPRINT, hook_points=HOOKS, d_model=D_MODEL
    )
    return model, store


def capture(
    store_path: str,
    n: int,
    batch_size: int,
    log_path: str,
    crash_at: str = "",
    crash_after: int = 1,
    batch_sleep: float = 0.0,
) -> None:
    """Fill the store; with `crash_at` set, SIGKILL at that crash point's `crash_after`-th hit."""
    plan = CrashPlan(crash_at, crash_after)
    if crash_at:
        inject_crash(plan, store_path)
    model, store = prepare(store_path)
    compute = make_compute(model, Path(log_path), batch_sleep, plan)
    run_batches(store, make_items(n), batch_size, compute, progress=False)


def random_batch(
    n_records: int, d_model: int, hooks: list[str], seed: int, text_len: int = 20
) -> tuple[list[RecordMeta], dict[str, torch.Tensor]]:
    """Records with random rows, for store tests that need no model."""
    g = torch.Generator().manual_seed(seed)
    records = []
    for k in range(n_records):
        n = 6 + k % 5
        records.append(
            RecordMeta(
                record_id=record_id("fp", f"rand-{seed}-{k}", {}, k, seed),
                condition_id=f"c{k % 2}",
                sample_index=k,
                seed=seed,
                sampling={},
                token_ids=list(range(n)),
                text="x" * text_len,
                n_prompt_tokens=n // 2,
                positions=list(range(1, n)),
                scaffold_mask=[False] * n,
                labels={"y": k % 2},
            )
        )
    n_rows = sum(len(r.positions) for r in records)
    return records, {h: torch.randn(n_rows, d_model, generator=g) for h in hooks}


def commit_limited(
    store_path: str,
    batch_id: str,
    n_records: int,
    seed: int,
    conn: Connection,
    fsize_limit: int = 0,
    uid: int = -1,
) -> None:
    """Try one commit under a file-size limit and/or as an unprivileged user; report the outcome."""
    store = ResidualStore.open(store_path)
    if fsize_limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    if uid >= 0:
        os.setgid(uid)
        os.setuid(uid)
    records, rows = random_batch(n_records, store.manifest.d_model, store.manifest.hook_points, seed)
    try:
        with store.writer() as writer:
            writer.commit_batch(batch_id, records, rows)
        conn.send({"error": None, "message": ""})
    except Exception as e:
        conn.send({"error": type(e).__name__, "message": str(e)})


def hold_lock(store_path: str, conn: Connection) -> None:
    """Hold the writer lock until told to commit one batch and release."""
    store = ResidualStore.open(store_path)
    with store.writer() as writer:
        conn.send(os.getpid())
        conn.recv()
        records, rows = random_batch(3, store.manifest.d_model, store.manifest.hook_points, seed=77)
        writer.commit_batch("held", records, rows)
    conn.send("done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--batch-sleep", type=float, default=0.0)
    args = parser.parse_args()
    model, store = prepare(args.store)
    model(torch.tensor([[1, 2, 3]]))  # warm up lazy initialisation before the kill window opens
    print("ready", flush=True)
    start = time.perf_counter()
    run_batches(
        store,
        make_items(args.n),
        args.batch_size,
        make_compute(model, Path(args.log), args.batch_sleep),
        progress=False,
    )
    print(f"done {time.perf_counter() - start:.3f}", flush=True)


if __name__ == "__main__":
    main()

"""What the Inspect model provider does with tripwire's parts, free of inspect_ai: validate the model args
before any weights load, run one chat through the decode loop with capture on, and commit it to a
`ResidualStore` as one record, or hand back the record already stored under the same id (resume).

One generate call of an Inspect sample is one record. Its id hashes the model, the rendered prompt's
token ids, the Inspect sample id and epoch, the sampling parameters and the seed, so re-running the same
eval (from the CLI or from Python) reuses every finished sample, and a second turn of an agent loop (a
different prompt) is its own record. A row's sample depends on its prompt and seed only, so a stored
reply is the reply a rerun would generate.
Records carry no labels: a reply is classified and scored afterwards (see `scenarios.inspect_logs`).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, ValidationError, field_validator
from torch import Tensor

from tripwire.activations import GeneratedRow, SamplingParams, load_model
from tripwire.activations.handle import ModelHandle
from tripwire.activations.layout import generated_transcript, transcript_record
from tripwire.activations.loading import pick_device, pick_dtype
from tripwire.activations.positions import PositionPolicy
from tripwire.activations.runner import batch_id_for
from tripwire.activations.source import resolve_source
from tripwire.activations.store import ResidualStore
from tripwire.activations.store_lock import WriterLock
from tripwire.activations.store_types import Record, RecordMeta, record_id
from tripwire.errors import UsageError
from tripwire.experiments.config import PositionsConfig, RunConfig
from tripwire.experiments.config.base import Strict
from tripwire.experiments.rollout_capture import CheckedModel, check_model, check_store_path, open_store
from tripwire.scenarios.datasets.jsonl import describe_errors

ReplyStop = Literal["stop", "max_tokens"]
_STOPS: dict[str, ReplyStop] = {"eos": "stop", "stop_string": "stop", "max_new_tokens": "max_tokens"}
_ARGS_FIX = ("pass model args as `-M key=value` (inspect eval) or `model_args={...}` (Python): store, hook_points, "
             "positions, store_dtype, backend, device, dtype, seed, max_tokens")


class InspectModelArgs(Strict):
    """The provider's model args. Without `store` the provider only generates (e.g. as a grader)."""

    store: Path | None = None
    hook_points: list[str] | None = Field(None, min_length=1)
    positions: PositionsConfig = Field(default_factory=PositionsConfig)
    store_dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    backend: Literal["hf", "transformer_lens", "nnsight"] = "hf"
    device: str | None = None
    dtype: str | None = None
    seed: int = 0  # epoch e samples with seed + 1000 * (e - 1) unless Inspect's --seed is set
    max_tokens: int = Field(512, ge=1, le=32768)  # when Inspect's max_tokens is unset

    @field_validator("hook_points", mode="before")
    @classmethod
    def _one_or_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value  # `-M hook_points=a` is a str, `=a,b` a list

    @field_validator("positions", mode="before")
    @classmethod
    def _policy_name(cls, value: Any) -> Any:
        return {"policy": value} if isinstance(value, str) else value  # `-M positions=reply`


@dataclass(frozen=True)
class SampleRef:
    """Which Inspect sample a generate call belongs to (all None outside an eval)."""

    sample_id: int | str | None = None
    epoch: int = 1
    task: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    stop_reason: ReplyStop
    input_tokens: int
    output_tokens: int
    record_id: str | None  # None: no store
    resumed: bool  # True: read back from the store, not generated


def parse_args(model: str, raw: dict[str, Any]) -> tuple[InspectModelArgs, RunConfig | None]:
    """Model args as the provider uses them, and, with a store, the run config the pipelines check."""
    try:
        args = InspectModelArgs.model_validate(raw)
    except ValidationError as err:
        raise UsageError(f"tripwire/{model}: bad model args ({describe_errors(err)}); {_ARGS_FIX}") from None
    if args.store is None:
        if args.hook_points is not None:
            raise UsageError(f"tripwire/{model}: hook_points={args.hook_points} without store; add "
                             "`-M store=DIR` to record activations, or drop hook_points to only generate")
        return args, None
    if args.hook_points is None:
        raise UsageError(f"tripwire/{model}: store={args.store} needs hook_points (e.g. "
                         "`-M hook_points=blocks.20.resid_post`, several separated by commas)")
    cfg = RunConfig(model=model, backend=args.backend, device=args.device, dtype=args.dtype, store=args.store,
                    store_dtype=args.store_dtype, hook_points=args.hook_points, positions=args.positions)
    return args, cfg


@dataclass(frozen=True)
class SharedModel:
    """A loaded model and the lock every provider on it holds while it decodes and commits: the backends'
    capture hooks live on the model, so two decode loops on it at once would mix their activations."""

    handle: ModelHandle
    lock: threading.Lock


_HANDLES: dict[tuple[str, str, str, str], SharedModel] = {}
_LOAD_LOCK = threading.Lock()
_STORE_LOCKS: dict[str, WriterLock] = {}


def shared_model(model: str, backend: str, device: str, dtype: str | None) -> SharedModel:
    """One loaded model per (model, backend, device, dtype) in this process: the eval's model and a grader
    on the same local model share weights. Read-only use only (no `intervening` blocks)."""
    key = (model, backend, device, str(dtype))
    with _LOAD_LOCK:
        if key not in _HANDLES:
            _HANDLES[key] = SharedModel(load_model(model, backend=backend, device=device, dtype=dtype),
                                        threading.Lock())
        return _HANDLES[key]


def store_lock(path: str | Path) -> WriterLock:
    """This process's writer lock on the store at `path`, taken the first time a provider names the store
    (before any weights load, so a store another process is writing is refused at once) and held until the
    process exits: every provider of this process writing there shares it, each reply one writer turn."""
    key = str(Path(path).resolve())
    with _LOAD_LOCK:
        lock = _STORE_LOCKS.get(key)
        if lock is None:
            lock = WriterLock(path)
            lock.acquire()
            atexit.register(lock.release)
            _STORE_LOCKS[key] = lock
        return lock


class InspectCapture:
    """The provider's tripwire side: everything is checked in `__init__` before the weights load."""

    def __init__(self, model: str, raw_args: dict[str, Any]):
        self.args, self.cfg = parse_args(model, raw_args)
        checked: CheckedModel | None = None
        if self.cfg is not None:
            checked = check_model(self.cfg, check_store_path(self.cfg))  # store, device, hook points: no weights
            device = checked.device
        else:
            device = pick_device(self.args.device)
            pick_dtype(self.args.dtype, device)
            resolve_source(model)
        writer_lock = store_lock(self.cfg.store) if self.cfg is not None else None  # before the weights load
        shared = shared_model(model, self.args.backend, device, self.args.dtype)
        self.handle, self._lock = shared.handle, shared.lock
        self.store: ResidualStore | None = (
            open_store(self.cfg, self.handle, writer_lock) if self.cfg is not None else None
        )
        self.hooks = checked.hooks if checked is not None else []
        self.policy: PositionPolicy = self.args.positions.build()

    def record_key(self, prompt_ids: list[int], sampling: SamplingParams, sample: SampleRef, seed: int) -> str:
        digest = hashlib.sha256(repr(prompt_ids).encode()).hexdigest()[:16]
        conversation = f"inspect:{sample.sample_id}:{digest}"  # not the task: `inspect eval` names it otherwise
        return record_id(self.handle.fingerprint, conversation, sampling.to_dict(), sample.epoch - 1, seed)

    def run(self, messages: list[dict[str, str]], tools: list[dict[str, Any]] | None, sampling: SamplingParams,
            sample: SampleRef, seed: int | None = None) -> Reply:
        """One reply to `messages` (blocking: call it from a worker thread)."""
        if tools and not self.handle.chat_capabilities.tools:
            raise UsageError(f"{self.handle.name}'s chat template cannot render tools, and this task offers "
                             f"{len(tools)}; use a model whose template takes `tools=` or a task without tools")
        prompt_ids = self.handle.render_chat(messages, tools)
        seed = (self.args.seed if seed is None else seed) + 1000 * (sample.epoch - 1)
        rid = self.record_key(prompt_ids, sampling, sample, seed)
        with self._lock:
            if self.store is None:
                row = self._generate(prompt_ids, sampling, seed)
                return Reply(row.text, _STOPS[row.stop_reason], len(prompt_ids), len(row.new_ids), None, False)
            with self.store.writer() as writer:  # re-reads the index: another provider may have written it
                stored = self._stored(rid)
                if stored is not None:
                    return _from_record(stored)
                row = self._generate(prompt_ids, sampling, seed)
                record, rows = self._record(rid, messages, row, sampling, sample, seed)
                writer.commit_batch(batch_id_for([rid]), [record], rows)
        return Reply(row.text, _STOPS[row.stop_reason], len(prompt_ids), len(row.new_ids), rid, False)

    def _generate(self, prompt_ids: list[int], sampling: SamplingParams, seed: int) -> GeneratedRow:
        return self.handle.generate([prompt_ids], sampling=sampling, seeds=[seed], capture=self.hooks or None)[0]

    def _stored(self, rid: str) -> Record | None:
        if self.store is None:
            return None
        found = self.store.records(lambda r: r.record_id == rid)
        return found[0] if found else None

    def _record(self, rid: str, messages: list[dict[str, str]], row: GeneratedRow, sampling: SamplingParams,
                sample: SampleRef, seed: int) -> tuple[RecordMeta, dict[str, Tensor]]:
        tokens = generated_transcript(self.handle.tokenizer, row.prompt_ids, [m["content"] for m in messages],
                                      row.new_ids)
        fed = tokens.n_tokens - 1  # the last emitted token never went through the model
        keep = [p for p in self.policy.select(tokens) if p < fed]
        metadata = json.loads(json.dumps(sample.metadata or {}, default=str))  # Inspect allows any object
        record = transcript_record(
            rid, tokens, keep, {}, condition_id=str(metadata.get("condition_id") or sample.sample_id or "inspect"),
            sampling=sampling.to_dict(), sample_index=sample.epoch - 1, seed=seed, outcome=None,
            meta={"source": "inspect", "task": sample.task, "run_id": sample.run_id, "sample_id": sample.sample_id,
                  "epoch": sample.epoch, "inspect_metadata": metadata, "stop_reason": row.stop_reason,
                  "positions": self.args.positions.model_dump()},
            fed_tokens=fed,
        )
        index = torch.tensor(keep, dtype=torch.long)
        return record, {hp: row.activations[hp].index_select(0, index) for hp in self.hooks}


def _from_record(record: Record) -> Reply:
    reply = record.text[int(record.meta["reply_char_offset"]):]
    stop = _STOPS.get(str(record.meta.get("stop_reason")), "stop")
    return Reply(reply, stop, record.n_prompt_tokens, record.n_tokens - record.n_prompt_tokens, record.record_id,
                 True)

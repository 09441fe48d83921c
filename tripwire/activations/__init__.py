"""Models and their insides: loading, backends, hook points, the decode loop, capture and the store."""

from tripwire.activations.backends.base import (
    BACKENDS,
    BackendCompatibilityError,
    Captured,
    ForwardResult,
    Intervention,
    UnknownBackendError,
)
from tripwire.activations.chat import ChatCapabilities, RenderedPrompt
from tripwire.activations.decode import GeneratedRow, SamplingParams, StepInfo, generate
from tripwire.activations.default_model import DefaultModelMissingError, prepare_default_model
from tripwire.activations.handle import ModelHandle
from tripwire.activations.hooks import HookPoint, HookPointError, hook_point, hook_points
from tripwire.activations.kv_cache import KVCache
from tripwire.activations.loading import ModelLoadError, load_model
from tripwire.activations.plan_shapes import PLAN_SHAPES, plan_model, planning
from tripwire.activations.positions import (
    AllTokens,
    BeforeAction,
    BeforeAnchor,
    CharSpan,
    ExcludeLastK,
    LastK,
    LastPromptToken,
    PositionPolicy,
    PositionPolicyError,
    ReplyOnly,
    SharedReply,
    TokenLayout,
    select_positions,
)
from tripwire.activations.remote import RemoteRequest, RemoteUnsupportedError, remote_request
from tripwire.activations.runner import BatchResult, RunnerError, RunSummary, WorkItem, run_batches
from tripwire.activations.store import ResidualStore, StoreWriter
from tripwire.activations.store_query import QueryResult
from tripwire.activations.store_types import (
    Record,
    RecordMeta,
    StoreCorruptError,
    StoreIntegrityError,
    StoreLockedError,
    StoreMismatchError,
    StoreNotFoundError,
    StoreProblem,
    StoreRecordError,
    StoreWriteError,
    record_id,
)

__all__ = [
    "AllTokens",
    "BeforeAction",
    "BeforeAnchor",
    "SharedReply",
    "CharSpan",
    "ExcludeLastK",
    "LastK",
    "LastPromptToken",
    "PositionPolicy",
    "PositionPolicyError",
    "ReplyOnly",
    "TokenLayout",
    "select_positions",
    "BatchResult",
    "RunnerError",
    "RunSummary",
    "WorkItem",
    "run_batches",
    "ResidualStore",
    "StoreWriter",
    "QueryResult",
    "Record",
    "RecordMeta",
    "StoreCorruptError",
    "StoreIntegrityError",
    "StoreLockedError",
    "StoreMismatchError",
    "StoreNotFoundError",
    "StoreProblem",
    "StoreRecordError",
    "StoreWriteError",
    "record_id",
    "RemoteRequest",
    "RemoteUnsupportedError",
    "remote_request",
    "BACKENDS",
    "BackendCompatibilityError",
    "Captured",
    "KVCache",
    "ChatCapabilities",
    "DefaultModelMissingError",
    "ForwardResult",
    "GeneratedRow",
    "HookPoint",
    "HookPointError",
    "Intervention",
    "ModelHandle",
    "ModelLoadError",
    "PLAN_SHAPES",
    "plan_model",
    "planning",
    "RenderedPrompt",
    "SamplingParams",
    "StepInfo",
    "UnknownBackendError",
    "generate",
    "hook_point",
    "hook_points",
    "load_model",
    "prepare_default_model",
]

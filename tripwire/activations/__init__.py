"""Models and their insides: loading, backends, hook points, the decode loop, capture and the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire._lazy import exports

if TYPE_CHECKING:
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
    from tripwire.activations.finetune import FinetuneError, LoraSettings, lora_model, train_lora
    from tripwire.activations.handle import ModelHandle
    from tripwire.activations.hooks import (
        HookPoint,
        HookPointError,
        absolute_hook_point,
        hook_point,
        hook_points,
        hook_spec,
    )
    from tripwire.activations.kv_cache import KVCache
    from tripwire.activations.loading import ModelLoadError, load_model
    from tripwire.activations.organism import ORGANISMS, OrganismAdapterError, prepare_organism
    from tripwire.activations.patching import (
        PatchError,
        SharedRun,
        patch_from,
        patched_last_logits,
        resid_pre_all,
        shared_runs,
    )
    from tripwire.activations.plan_shapes import PLAN_SHAPES, plan_model, planning
    from tripwire.activations.positions import (
        AllTokens,
        BeforeAction,
        BeforeAnchor,
        BeforeToolCall,
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
    from tripwire.activations.store import ResidualStore
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
    from tripwire.activations.store_writer import StoreWriter

__getattr__, __dir__, __all__ = exports(__name__, __file__)

"""What every experiment pipeline shares: the run context (one lazily loaded model for all stages),
the plan a dry run prints, and the report section a stage's output renders to.

A pipeline is `key` (what its output depends on: the cache key), `plan` (dry run: no weights),
`run` (the work, returning its typed output, `outputs.py`) and `section` (that output as tables,
figures and caveats). The cache holds the output's JSON and a cached stage is parsed back into the
same type, so a stage restored from the cache renders like a fresh one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import tripwire.activations as activations
from tripwire.activations.source import ModelSource, resolve_source
from tripwire.errors import UsageError
from tripwire.experiments.config import STAGE_REF, ExperimentConfig
from tripwire.experiments.runs import StageCache, content_hash, stage_cache
from tripwire.experiments.stages.outputs import RateRow, StageOutput
from tripwire.probes.metrics import wilson_interval
from tripwire.probes.persistence import CARD_FILE, probe_path, shipped_probe_names

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from tripwire.activations.handle import ModelHandle

PROBE_FOLDER = "probe"  # where a `probe` stage keeps its probe inside its cache folder
OutputT = TypeVar("OutputT", bound=StageOutput)


def rate_row(harmful: int, n: int) -> RateRow:
    interval = wilson_interval(harmful, n)
    return RateRow(n=n, harmful=harmful, rate=harmful / n if n else None,
                   ci_low=interval[0] if interval else None, ci_high=interval[1] if interval else None)


@dataclass
class Context:
    """One experiment run: its config, where the cache and the run folder are, and the model, loaded
    the first time a stage needs it (a run whose stages are all cached never loads weights)."""

    cfg: ExperimentConfig
    runs_root: Path
    progress: bool = True
    _handle: ModelHandle | None = None
    _source: ModelSource | None = None
    stage_keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # by stage name, filled in stage order
    planned_stores: set[Path] = field(default_factory=set)  # a dry run counts a shared store's capture once
    log: Callable[[str], None] = lambda _: None  # progress lines of long stages (the CLI prints them)

    def source(self) -> ModelSource:
        if self._source is None:
            self._source = resolve_source(self.cfg.model)
        return self._source

    def handle(self) -> ModelHandle:
        if self._handle is None:  # through the package: a test that forbids loading patches it there
            self._handle = activations.load_model(self.cfg.model, backend=self.cfg.backend, device=self.cfg.device,
                                                  dtype=self.cfg.dtype, device_map=self.cfg.device_map,
                                                  quantization=self.cfg.quantization, remote=self.cfg.remote)
        return self._handle

    def model_key(self) -> dict[str, Any]:
        """The model part of every cache key: a changed default model must not reuse old outputs."""
        key = {"model": self.cfg.model, "fingerprint": self.source().fingerprint, "backend": self.cfg.backend,
               "dtype": self.cfg.dtype, "seed": self.cfg.seed}
        if self.cfg.quantization:  # quantised weights give other activations; sharding and NDIF do not
            key["quantization"] = self.cfg.quantization
        return key

    def probe_dir(self, ref: str) -> Path:
        """The folder of probe `ref`: a shipped name or folder, or `stage:<name>`, the probe an earlier
        `probe` stage keeps in its cache folder (there once that stage has run)."""
        if ref.startswith(STAGE_REF):
            return stage_cache(self.runs_root, self._stage_key(ref), create=False).root / PROBE_FOLDER
        return probe_path(ref)

    def probe_key(self, ref: str) -> dict[str, Any]:
        """What a stage reading probe `ref` depends on: the earlier stage's cache key, or the card's bytes
        (which carry the arrays' checksums). A probe that is not there fails here, before any stage runs."""
        if ref.startswith(STAGE_REF):
            return {"probe": ref, "stage_key": content_hash(self._stage_key(ref))}
        card = self.probe_dir(ref) / CARD_FILE
        if not card.is_file():
            raise UsageError(f"probe {ref!r} not found (no {card}); give a shipped probe "
                             f"({', '.join(shipped_probe_names()) or 'none installed'}), a probe folder "
                             "(relative to the config file), or stage:<name> of an earlier probe stage")
        return {"probe": ref, "card_sha256": hashlib.sha256(card.read_bytes()).hexdigest()}

    def _stage_key(self, ref: str) -> dict[str, Any]:
        name = ref.removeprefix(STAGE_REF)
        if name not in self.stage_keys:
            raise UsageError(f"probe {ref!r}: no earlier stage named {name!r}; put a `probe` stage of that name "
                             "before this one")
        return self.stage_keys[name]


@dataclass(frozen=True)
class StagePlan:
    """What a stage will do: shown by a dry run (and recorded in results.json by a real one)."""

    description: str
    rollouts: int = 0
    forwards: int = 0  # model calls: prefill + one per decode step (upper bound) per batch, or one per reply
    tokens: int = 0
    eta_seconds: float = 0.0
    cached: bool = False

    def describe(self) -> str:
        if self.cached:
            return f"{self.description}; cached (reused, 0 s)"
        if not self.forwards:
            return f"{self.description}; no model work"
        rollouts = f"{self.rollouts} rollouts, <= " if self.rollouts else ""
        return (f"{self.description}; {rollouts}{self.forwards:,} forwards, {self.tokens:,} tokens, "
                f"ETA ~{self.eta_seconds / 60:.1f} min (rough: from the parameter count)")


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Any]]
    # what the numbers are read against (a baseline, a reference, a control); None: a table that compares
    # nothing (what was run, example replies) gets no "Compared against" footer
    compared_against: str | None = None


@dataclass
class Section:
    title: str
    what: str  # what the stage did, in words
    headline: list[str] = field(default_factory=list)  # one-line findings with their baselines
    tables: list[Table] = field(default_factory=list)
    figures: list[go.Figure] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    # ONE sentence for the report's opening "What this run found" box: the stage's main figure beside what
    # it is compared with; "" falls back to the first headline line (`finding_line`)
    finding: str = ""
    limits: list[str] = field(default_factory=list)  # what the stage cannot show (the box's "does not show")

    def finding_line(self) -> str:
        """The sentence the findings box gives this stage."""
        return self.finding or (self.headline[0] if self.headline else f"{self.title}: no finding stated")


class Pipeline(Protocol[OutputT]):
    """`output_type` parses a cached output; `run` returns one and `section` reads it."""

    name: str
    output_type: type[OutputT]

    def key(self, ctx: Context, options: Any) -> dict[str, Any]: ...

    def plan(self, ctx: Context, options: Any, cache: StageCache) -> StagePlan: ...

    def run(self, ctx: Context, options: Any, cache: StageCache) -> OutputT: ...

    def section(self, output: OutputT) -> Section: ...


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}%}"


def wilson_text(row: RateRow) -> str:
    """A rate's Wilson interval as "low to high" in percent (a `RateRow`; a metric's is `metrics.interval_text`)."""
    if row.ci_low is None or row.ci_high is None:
        return "n/a (no samples)"
    return f"{row.ci_low:.1%} to {row.ci_high:.1%}"

"""Run folders and the stage cache.

A run is `runs/<UTC time>-<name>/`: `config.yaml` (resolved), `environment.json`, `results.json`,
`cards/` and `report.html`. Expensive work lives apart, in `runs/cache/<hash>/`, keyed on the content
hash of what a stage depends on (model, seed, the stage's options, the bytes of its input files, and the
tripwire source that computes it), so a re-run of a config, or a run interrupted half-way, reuses every
finished stage under the same code; an unfinished rollout resumes by record id inside its `ResidualStore`.
A stage's output is written atomically with its checksum beside it, and counts as done only when the
checksum verifies.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tripwire import package_version
from tripwire.probes.persistence import git_commit
from tripwire.strict_json import dumps, strict_json

CACHE_VERSION = 1  # bump when a stage's output format changes: old entries are then not reused
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the tripwire package whose code keys the cache
_UMASK = os.umask(0)
os.umask(_UMASK)
PACKAGES = ("torch", "transformers", "nnsight", "transformer-lens", "tripwire")


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: a reader sees all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a run folder is read like any other file
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def content_hash(obj: Any) -> str:
    canonical = json.dumps(strict_json(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def file_digests(paths: Iterable[Path]) -> dict[str, str]:
    """sha256 of every file at or under each path (sorted), so changed inputs get a new cache entry."""
    out: dict[str, str] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@dataclass(frozen=True)
class StageCache:
    """One stage's cache folder: `output.json` plus `output.json.sha256`, and whatever stores it keeps."""

    root: Path

    @property
    def output_file(self) -> Path:
        return self.root / "output.json"

    @property
    def checksum_file(self) -> Path:
        return self.root / "output.json.sha256"

    def load(self) -> dict[str, Any] | None:
        """The finished output, or None when absent or its checksum does not verify (then it is redone)."""
        try:
            text = self.output_file.read_text(encoding="utf-8")
            want = self.checksum_file.read_text(encoding="utf-8").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        if hashlib.sha256(text.encode()).hexdigest() != want:
            return None
        data = json.loads(text)
        return data if isinstance(data, dict) else None

    def save(self, output: dict[str, Any]) -> None:
        """Old checksum removed first, new one written last: a crash in between leaves an output with no
        matching checksum, which `load` treats as unfinished."""
        text = dumps(output)
        self.checksum_file.unlink(missing_ok=True)
        write_atomic(self.output_file, text)
        write_atomic(self.checksum_file, hashlib.sha256(text.encode()).hexdigest() + "\n")


def code_digest(package: Path) -> str:
    """sha256 over every Python source file of `package` (path and bytes, in path order): the code a stage
    output came from. Part of every stage's cache key, so an output computed by other code (a changed
    statistic, a new row) is computed again instead of reused."""
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@functools.cache
def tripwire_code() -> str:
    """`code_digest` of this tripwire (read once per process)."""
    return code_digest(PACKAGE_ROOT)


def stage_cache(runs_root: Path, key: dict[str, Any], create: bool = True, *, code: str | None = None) -> StageCache:
    """The cache folder for `key` and the code (`tripwire_code()` unless given), created with both beside it
    unless `create` is False (a dry run)."""
    key = {**key, "code": code or tripwire_code()}
    digest = content_hash({"cache_version": CACHE_VERSION, **key})
    folder = runs_root / "cache" / digest
    if not create:
        return StageCache(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "key.json"
    if not key_file.exists():
        write_atomic(key_file, dumps(key))
    return StageCache(folder)


def environment(seed: int, device: str | None) -> dict[str, Any]:
    """What a reader needs to reproduce the numbers: package versions, commit, device, threads, seed."""
    import torch


    versions = {name: package_version(name) for name in PACKAGES}
    return {
        "packages": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "seed": seed,
    }


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, runs_root: Path, name: str, now: datetime | None = None) -> RunDir:
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        path = runs_root / f"{stamp}-{name}"
        n = 1
        while path.exists():  # two runs in the same second
            n += 1
            path = runs_root / f"{stamp}-{name}-{n}"
        path.mkdir(parents=True)
        (path / "cards").mkdir()
        return cls(path)

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def environment_file(self) -> Path:
        return self.path / "environment.json"

    @property
    def results_file(self) -> Path:
        return self.path / "results.json"

    @property
    def report_file(self) -> Path:
        return self.path / "report.html"

    @property
    def cards(self) -> Path:
        return self.path / "cards"

    def read_results(self) -> dict[str, Any]:
        if not self.results_file.is_file():
            raise FileNotFoundError(f"{self.path} has no results.json; pass a folder written by "
                                    "`tripwire experiment run` (runs/<time>-<name>/)")
        data = json.loads(self.results_file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{self.results_file} is not a JSON object")
        return data

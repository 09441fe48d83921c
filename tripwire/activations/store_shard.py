"""Shard files: one safetensors file per committed batch, one `[rows, d_model]` tensor per hook point.

A shard is written to a temp file in the store, fsynced, and renamed into place, so a shard file under
its final name is always complete; whether it is *committed* is decided by the index alone. Reads check
a shard's bytes against the sha256 the index recorded, once per file version per process, so a damaged
shard fails loudly instead of feeding wrong numbers to a probe.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from jaxtyping import Float
from safetensors import safe_open
from safetensors.torch import save
from torch import Tensor

from tripwire.activations.default_model import sha256_file as sha256_file  # one file checksum for the package
from tripwire.activations.store_index import SHARDS, fsync_dir, shard_name, temp_name, write_all
from tripwire.activations.store_paths import open_nofollow, unsafe_path
from tripwire.activations.store_types import (
    StoreCorruptError,
    StoreIntegrityError,
    StoreUnsafePathError,
    StoreWriteError,
)

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
}
"""The torch dtype each manifest dtype is stored (and read back) as."""

# (path, device, inode, size, mtime_ns) -> sha256 of the bytes that file version held when hashed
_checked: dict[tuple[str, int, int, int, int], str] = {}


def rows_sha256(
    rows: dict[str, Float[Tensor, "rows d_model"]], hook_points: Sequence[str], offset: int, count: int
) -> str:
    """Checksum of one record's rows across hook points: names damaged records inside a bad shard."""
    h = hashlib.sha256()
    for hook in hook_points:
        block = rows[hook][offset : offset + count].contiguous()
        h.update(block.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def write_shard(
    root: Path, batch_id: str, rows: dict[str, Float[Tensor, "rows d_model"]], token: str,
    header: dict[str, str] | None = None,
) -> str:
    """Atomically write a batch's shard via a temp file named with the writer's `token`; returns the sha256
    of the file's bytes. `header`: safetensors metadata (the batch's sealed records, store_deep.py). A
    symlink in the shard's place is refused, not replaced."""
    data = save(rows, metadata=header)
    final = shard_path(root, shard_name(batch_id))
    tmp = final.with_name(temp_name(final.name, token))
    try:
        fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreWriteError(
            f"cannot write shard {final} ({e}); free disk space or fix the directory's permissions, then "
            "rerun: committed batches are intact"
        ) from e
    return hashlib.sha256(data).hexdigest()


def check_shards_dir(root: Path) -> None:
    """Refuse a `shards/` that is a symlink: its files would belong to some other directory or store."""
    shards = root / SHARDS
    if shards.is_symlink():
        raise StoreUnsafePathError(
            f"{shards} is a symlink (to {os.readlink(shards)}); a store only reads and writes shards inside "
            f"itself: replace the link with a real directory holding this store's shards, or open the store "
            "the link points into directly"
        )


def shard_path(root: Path, shard: str) -> Path:
    """`root/shard`, refused if reading or writing it would leave the store (symlinked `shards/` or shard)."""
    check_shards_dir(root)
    path = root / shard
    if path.is_symlink():
        raise unsafe_path(path)
    return path


def check_shard_bytes(root: Path, shard: str, expected_sha256: str) -> Path:
    """The shard's path once its bytes hash to `expected_sha256` (hashed once per file version per process).

    A read that trusted the index alone would hand a flipped byte to a probe as a plausible number.
    """
    path = shard_path(root, shard)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise StoreCorruptError(
            f"shard {shard} of store {root} is missing; run `tripwire store verify {root}` to list the "
            "affected records, then restore the shard from a backup or recapture into a new store"
        ) from None
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    actual = _checked.get(key)
    if actual is None:
        actual = _checked[key] = sha256_file(path)
    if actual != expected_sha256:
        raise StoreIntegrityError(
            f"shard {shard} of store {root} does not match the sha256 recorded when it was written "
            f"({actual[:16]}... != {expected_sha256[:16]}...): its bytes changed on disk; run "
            f"`tripwire store verify {root}` to name the damaged records, then restore the shard from a "
            "backup or recapture into a new store"
        )
    return path


def shard_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor in a shard, from its header (no rows are read)."""
    with safe_open(str(path), framework="pt") as f:
        return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}


def read_rows(path: Path, hook_point: str, offset: int, count: int) -> Float[Tensor, "rows d_model"]:
    """Rows `[offset, offset+count)` of one hook's tensor, read through a memory map."""
    with safe_open(str(path), framework="pt") as f:
        rows: Tensor = f.get_slice(hook_point)[offset : offset + count]
    return rows

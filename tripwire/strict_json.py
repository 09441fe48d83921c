"""One way to turn results into standard JSON: every report, cache entry and card writer goes through it.

Standard JSON has no NaN or Infinity (a browser's `JSON.parse` refuses them), so they become null;
numpy and torch scalars become Python numbers, arrays lists, tuples lists, paths strings, and objects
with a `to_dict()` their dict.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def strict_json(obj: Any) -> Any:
    """`obj` as plain JSON values, NaN and ±Infinity as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and getattr(obj, "ndim", 0) > 0:  # numpy / torch arrays
        return strict_json(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return strict_json(obj.item())
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return strict_json(obj.to_dict())
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    """`obj` as strict JSON text, one trailing newline."""
    return json.dumps(strict_json(obj), indent=indent, allow_nan=False, ensure_ascii=False) + "\n"


def write_json(path: Path, obj: Any, indent: int | None = 1) -> None:
    """`obj` as strict JSON at `path`, through a temp file and `os.replace`: a killed writer leaves the old file
    or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dumps(obj, indent=indent), encoding="utf-8")
    os.replace(tmp, path)

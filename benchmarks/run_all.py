"""`make bench`: run every benchmark in one process each and collect their RATIO lines at the end.

    python benchmarks/run_all.py [--quick] [--device cuda] [--only monitor]

--quick goes to every benchmark; --device to those that take it (their source declares `--device`;
the others run on their default device, named in the summary).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--quick", action="store_true")
parser.add_argument("--device", default=None, help="cpu or cuda; default: each benchmark's own (cpu)")
parser.add_argument("--only", default=None, help="run only the bench_*.py whose name contains this")
args = parser.parse_args()
here = Path(__file__).parent
ratios: list[str] = []
failed: list[str] = []
no_device: list[str] = []
scripts = [s for s in sorted(here.glob("bench_*.py")) if args.only is None or args.only in s.name]
if not scripts:
    sys.exit(f"--only {args.only!r} matches none of {', '.join(s.name for s in sorted(here.glob('bench_*.py')))}")
for script in scripts:
    print(f"=== {script.name}", flush=True)
    argv = ["--quick"] if args.quick else []
    if args.device is not None:
        if "--device" in script.read_text():
            argv += ["--device", args.device]
        else:
            no_device.append(script.name)
    proc = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True)
    print(proc.stdout, end="")
    if proc.returncode != 0:
        failed.append(script.name)
        print(proc.stderr[-3000:], file=sys.stderr)
    ratios += [line for line in proc.stdout.splitlines() if line.startswith("RATIO ")]
print("=== summary")
print("\n".join(ratios))
if no_device:
    print(f"ran without --device {args.device} (they take no --device): {', '.join(no_device)}")
if failed:
    sys.exit(f"failed: {', '.join(failed)}")

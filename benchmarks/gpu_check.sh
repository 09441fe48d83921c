#!/usr/bin/env bash
# The one prepared GPU check (see benchmarks/gpu_check.py): run from the repository root on the GPU machine,
#     bash benchmarks/gpu_check.sh [extra gpu_check.py options]
# Uses $PYTHON, else python3, else python (the machine's own: the venv does not travel). Writes the log to
# $OUT/gpu_check.log when $OUT is set. Hard stop at 470 s (the script itself stops starting parts at 400 s).
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
PY="${PYTHON:-$(command -v python3 || command -v python)}"
# A bare GPU machine may lack pydantic (tripwire needs it): `make gpu-wheels` downloads the locked wheels
# for that machine's Python into build/wheels; carry that folder and they install into a temporary target.
if [ -d build/wheels ] && ! "$PY" -c "import pydantic" 2>/dev/null; then
    target="${TMPDIR:-/tmp}/tripwire-gpu-wheels"
    "$PY" -m pip install -q --no-index --find-links build/wheels --target "$target" pydantic \
        && export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
fi
run() {
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    fi
    timeout -k 10 470 "$PY" benchmarks/gpu_check.py --device cuda "$@"
    local rc=$?
    [ "$rc" -eq 124 ] && echo "gpu_check.sh: stopped by the 470 s hard limit"
    echo "gpu_check.sh: exit $rc"
    return "$rc"
}
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    run "$@" 2>&1 | tee "$OUT/gpu_check.log"
else
    run "$@" 2>&1
fi

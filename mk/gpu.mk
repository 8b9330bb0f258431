# GPU benchmark targets: thin wrappers over the speedbench CLI (see docs/makefile.md).
# Included from the main Makefile; every variable can be set on the command line:
#   make sweep ENGINE=vllm PRESET=my-gpu-preset ISL=8k CONCURRENCY=1,2,4,8,16,32
# Values are passed single-quoted, as one argument each; nothing is evaluated by the shell.

SPEEDBENCH ?= .venv/bin/speedbench
# A SPEEDBENCH_ENGINE_PYTHON left in the environment (e.g. pointing at the vLLM-CPU venv) must not leak into
# GPU sweeps, so their engine Python comes from the preset/config, SPEEDBENCH_ENGINE__PYTHON or GPU_ENGINE_PYTHON.
SB = env -u SPEEDBENCH_ENGINE_PYTHON $(SPEEDBENCH)

ENGINE       ?=
PRESET       ?=
CONFIG       ?=
MODEL        ?=
GPU_ENGINE_PYTHON ?=
ENDPOINT     ?=
TP           ?=
ISL          ?=
SPLIT        ?=
CONCURRENCY  ?=
OUTPUT_LEN   ?=
SD           ?=
DRAFT_LENGTH ?=
OUTPUT_DIR   ?=
NAME         ?=
EXTRA        ?=
# container launch: LAUNCHER=docker|podman|enroot|pyxis IMAGE=vllm/vllm-openai:v0.11.0 (or the preset's images)
LAUNCHER     ?=
IMAGE        ?=
GPU_HOUR_USD ?=
# qualitative: SPEED-Bench's qualitative run (all categories, concurrency 32); every request stops at EOS under
# the output cap (4096 unless OUTPUT_LEN), as SPEED-Bench runs it; EXTRA=--fixed-length forces the cap instead
QUALITATIVE_SPLIT       ?= qualitative-mini
QUALITATIVE_CONCURRENCY ?= 32
# throughput: one sweep per ISL bucket over SPEED-Bench's concurrency grid, on the throughput split unless
# THROUGHPUT_SPLIT names another (that one is then padded to each ISL only with EXTRA=--pad-to-isl)
THROUGHPUT_SPLIT       ?=
THROUGHPUT_ISLS        ?= 1k 2k 8k 16k 32k
THROUGHPUT_CONCURRENCY ?= 1,2,4,8,16,32,64
# report / compare
RESULTS ?=
FORMAT  ?= table

# $(call sb_opt,--flag,VALUE): "--flag 'VALUE'" when VALUE is set, nothing otherwise
sb_opt = $(if $(strip $(2)),$(1) '$(strip $(2))')

SB_COMMON = $(call sb_opt,--preset,$(PRESET)) $(call sb_opt,--config,$(CONFIG)) \
	$(call sb_opt,--engine,$(ENGINE)) $(call sb_opt,--model,$(MODEL)) \
	$(call sb_opt,--engine-python,$(GPU_ENGINE_PYTHON)) $(call sb_opt,--endpoint,$(ENDPOINT)) \
	$(call sb_opt,--tp,$(TP)) $(call sb_opt,--output-len,$(OUTPUT_LEN)) $(call sb_opt,--sd,$(SD)) \
	$(call sb_opt,--draft-length,$(DRAFT_LENGTH)) $(call sb_opt,--output-dir,$(OUTPUT_DIR)) \
	$(call sb_opt,--launcher,$(LAUNCHER)) $(call sb_opt,--image,$(IMAGE)) \
	$(call sb_opt,--gpu-hour-usd,$(GPU_HOUR_USD))

.PHONY: sweep qualitative throughput compare report plan serve-api config-show containers-cleanup

sweep: ## one SD-off / SD-on sweep with the given settings
	$(SB) sweep $(SB_COMMON) $(call sb_opt,--isl,$(ISL)) $(call sb_opt,--split,$(SPLIT)) \
		$(call sb_opt,--concurrency,$(CONCURRENCY)) $(call sb_opt,--name,$(NAME)) $(EXTRA)

qualitative: ## SPEED-Bench qualitative: every category, stop at EOS under the cap, acceptance per category
	$(SB) sweep $(SB_COMMON) --split '$(QUALITATIVE_SPLIT)' --isl none \
		--concurrency '$(or $(CONCURRENCY),$(QUALITATIVE_CONCURRENCY))' --name '$(or $(NAME),qualitative)' $(EXTRA)

throughput: ## SPEED-Bench throughput: one sweep per ISL bucket in THROUGHPUT_ISLS
	@set -e; for isl in $(THROUGHPUT_ISLS); do \
		echo "== throughput ISL $$isl"; \
		$(SB) sweep $(SB_COMMON) $(call sb_opt,--split,$(THROUGHPUT_SPLIT)) --isl "$$isl" \
			--concurrency '$(or $(CONCURRENCY),$(THROUGHPUT_CONCURRENCY))' --name "$(or $(NAME),throughput)-$$isl" $(EXTRA); \
	done

compare: ## side-by-side table of several results folders: make compare RESULTS="a b"
	@test $(words $(RESULTS)) -ge 2 || { echo "make compare needs RESULTS=\"dir1 dir2 ...\" (two or more)" >&2; exit 2; }
	$(SPEEDBENCH) report $(foreach r,$(RESULTS),'$(r)') --format '$(FORMAT)'

report: ## summary of one or more results folders: make report RESULTS=results/<run>
	@test -n "$(strip $(RESULTS))" || { echo "make report needs RESULTS=<results folder>" >&2; exit 2; }
	$(SPEEDBENCH) report $(foreach r,$(RESULTS),'$(r)') --format '$(FORMAT)'

plan: ## print the job matrix (add EXTRA="--submit slurm --partition gpu" to submit)
	$(SB) plan $(SB_COMMON) $(call sb_opt,--concurrency,$(CONCURRENCY)) $(EXTRA)

serve-api: ## REST service on 127.0.0.1:8080 (EXTRA="--host 0.0.0.0 --token ..." to expose it)
	$(SPEEDBENCH) serve-api $(call sb_opt,--output-dir,$(OUTPUT_DIR)) $(EXTRA)

config-show: ## the effective config of a sweep with these settings, and where each value comes from
	$(SB) config show $(SB_COMMON) $(call sb_opt,--isl,$(ISL)) $(call sb_opt,--concurrency,$(CONCURRENCY))

containers-cleanup: ## remove containers a killed sweep left behind (LAUNCHER=podman for podman)
	$(SPEEDBENCH) engines cleanup --runtime '$(if $(filter podman,$(LAUNCHER)),podman,docker)'

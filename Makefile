#################################################################################
# GLOBALS                                                                       #
#################################################################################

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9

# Sample data (make data)
DATA_DIR ?= data/datastore/raw
COUNT ?= 100
SCALE ?= 1
SOURCE ?= bundled
BENCH_DIR ?= data/bench

# Local runs. INPUT_DIR, OUTPUT_DIR and ENTRY_SCRIPT are plain assignments so that only the command
# line overrides them: INPUT_DIR is also the name of the datastore-folder setting in .env.
LOCAL_OUTPUT_DIR ?= outputs/local
INPUT_DIR = $(LOCAL_OUTPUT_DIR)/preparation
OUTPUT_DIR = $(LOCAL_OUTPUT_DIR)/extraction
ENTRY_SCRIPT = src/steps/extract_entry.py
RESUME ?=

#################################################################################
# SET-UP                                                                        #
#################################################################################

# The virtual environment, rebuilt whenever the lock file changes.
$(VENV)/.installed: uv.lock pyproject.toml
	test -x $(PYTHON) || $(PYTHON_BIN) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) sync --frozen --extra dev --quiet
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

## Check the code style (flake8); changes nothing
.PHONY: lint
lint: $(VENV)/.installed
	$(VENV)/bin/flake8 src tools tests

## Run the test suite
.PHONY: test
test: $(VENV)/.installed
	$(VENV)/bin/pytest

#################################################################################
# LOCAL PIPELINE                                                                #
#################################################################################

## Generate the sample data into DATA_DIR (COUNT files, SCALE copies, SOURCE=bundled|sklearn)
.PHONY: data
data: $(VENV)/.installed
	$(PYTHON) -m tools.make_data --out $(DATA_DIR) --count $(COUNT) --scale $(SCALE) --source $(SOURCE)

## Run the preparation step locally: DATA_DIR -> LOCAL_OUTPUT_DIR/preparation
.PHONY: local-prepare
local-prepare: data
	rm -rf $(LOCAL_OUTPUT_DIR)/preparation
	$(PYTHON) src/steps/prepare_step.py --source-dir $(DATA_DIR) --output $(LOCAL_OUTPUT_DIR)/preparation

## Run the extraction entry script locally on mini-batches (INPUT_DIR, OUTPUT_DIR, ENTRY_SCRIPT, RESUME=1)
.PHONY: local-extract
# The default input is prepared first, except on RESUME=1 (a fresh copy would count as changed input).
local-extract: $(VENV)/.installed $(if $(RESUME),,$(if $(filter $(LOCAL_OUTPUT_DIR)/preparation,$(INPUT_DIR)),local-prepare))
	$(PYTHON) -m orchestration.prs --entry_script $(ENTRY_SCRIPT) --input $(INPUT_DIR) \
		--output $(OUTPUT_DIR) $(if $(RESUME),--resume)

## Run the whole pipeline locally: data -> preparation -> extraction -> training
.PHONY: local-run
local-run: data
	$(PYTHON) -m orchestration.local_pipeline --data-dir $(DATA_DIR) --output $(LOCAL_OUTPUT_DIR)

## Benchmark the local runner against a serial loop, Pool, joblib and cat (100k one-record files)
.PHONY: bench
bench: $(VENV)/.installed
	$(PYTHON) -m tools.make_data --out $(BENCH_DIR) --count 20640 --scale 5
	$(PYTHON) -m tools.bench --data $(BENCH_DIR) --json $(LOCAL_OUTPUT_DIR)/bench.json

## Remove generated data, outputs and caches (keeps .venv)
.PHONY: clean
clean:
	rm -rf data/datastore data/bench outputs .pytest_cache
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +

#################################################################################
# Self Documenting Commands                                                     #
#################################################################################

## Show this help
.PHONY: help
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-zA-Z_-]+:/{if(doc){split($$1,t,":"); \
		printf "  %-16s %s\n", t[1], doc}; doc=""} !/^## /{if(!/^\.PHONY/)doc=doc}' $(MAKEFILE_LIST)

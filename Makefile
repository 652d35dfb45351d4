# Evergreen developer tasks. On a fresh clone with only python3 (>= 3.11):
#   make quickstart    run the main loop on embedded defaults
#   make test          everything CI checks: lint, format, types, import layers, tests
#
# The virtualenv (.venv) is made on first use and the project (editable, with the dev, docs, postgres, redis,
# onnx, lightgbm, s3 and ray extras and xgboost-cpu, so the ONNX, boosting, object-storage and Ray executor
# tests run for real) is reinstalled whenever pyproject.toml or this Makefile is newer than the stamp file
# .venv/.installed.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VENV_PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Only the folders that exist: examples/ and benchmarks/ may be absent in a fresh clone.
CODE_DIRS := $(wildcard src tests examples benchmarks docs/hooks.py)
# Three workers on two cores: tests spend much of their time waiting for the CLI processes and servers
# they start (6.4 against 8.0 minutes with two workers, measured on a quiet machine). The slowest tests are
# listed after each run, to keep the whole suite within 10 minutes on two cores. Tests marked with one
# xdist_group run on one worker, so an expensive module fixture (the UI's quickstart project) is built once.
PYTEST_ARGS ?= -n 3 --dist loadgroup --durations=15

.PHONY: help setup test lint docs docs-serve format typecheck imports pytest quickstart bench clean distclean

help:
	@echo "make quickstart   set up .venv, then run 'evergreen quickstart'"
	@echo "make test         set up, then ruff check, ruff format --check, mypy, lint-imports, pytest"
	@echo "                  (pytest runs on 3 processes; other arguments: make test PYTEST_ARGS=\"-k foo\")"
	@echo "make lint         the static checks of 'make test' without pytest"
	@echo "make docs         build the documentation site into site/ (mkdocs build --strict); make docs-serve previews it"
	@echo "make format       ruff format, then ruff check --fix"
	@echo "make bench        run the benchmarks (pipeline overhead, profile, drift, ONNX speed, tracking, prediction log, serving,"
	@echo "                  the Ray executor per step; feature store: installs Feast into /tmp/feast-venv, never into .venv; the control API on a seeded"
	@echo "                  store beside MLflow from /tmp/mlflow-venv when present; the loop on drifting streams)"
	@echo "make clean        remove caches and build output; 'make distclean' also removes .venv"

setup: $(STAMP)

$(VENV_PY):
	@echo "Creating virtualenv $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "error: '$(PYTHON) -m venv' failed; Python >= 3.11 with the venv module is needed" \
	       "(Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }

$(STAMP): pyproject.toml Makefile | $(VENV_PY)
	@echo "Installing evergreen (editable, extras dev,docs,postgres,redis,onnx,lightgbm,s3,ray, and xgboost-cpu) into $(VENV)"
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet -e ".[dev,docs,postgres,redis,onnx,lightgbm,s3,ray]" "xgboost-cpu>=2.1"
	@touch $@

lint: setup
	$(BIN)/ruff check $(CODE_DIRS)
	$(BIN)/ruff format --check $(CODE_DIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@# A merge conflict left in prose is valid Markdown: refuse its markers anywhere in the project's text.
	@! grep -rnE '^(<<<<<<<|>>>>>>>)( |$$)' --include='*.md' --include='*.py' --include='*.yaml' --include='*.toml' \
		README.md CONTRIBUTING.md docs docs_src src tests examples benchmarks || (echo "merge conflict markers above"; exit 1)

# The site is built with warnings as errors: a broken link, anchor or API reference fails the build.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

test: lint
	bash .ci/ensure-postgres
	bash .ci/ensure-redis
	bash .ci/ensure-chromium
	@rc=0; $(VENV_PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then \
	  echo "error: pytest collected no tests (exit code 5); 'make test' treats that as a failure" >&2; \
	  exit 1; \
	fi; \
	exit $$rc

format: setup
	$(BIN)/ruff format $(CODE_DIRS)
	$(BIN)/ruff check --fix $(CODE_DIRS)

quickstart: setup
	$(BIN)/evergreen quickstart

bench: setup
	$(VENV_PY) benchmarks/pipeline_overhead.py
	$(VENV_PY) benchmarks/profile.py
	$(VENV_PY) benchmarks/drift.py
	$(VENV_PY) benchmarks/onnx_speed.py
	$(VENV_PY) benchmarks/tracking.py
	$(VENV_PY) benchmarks/prediction_log.py
	$(VENV_PY) benchmarks/serving.py
	$(VENV_PY) benchmarks/features.py
	nice $(VENV_PY) benchmarks/api.py
	nice $(VENV_PY) benchmarks/ui.py
	$(VENV_PY) benchmarks/loop.py
	$(VENV_PY) benchmarks/startup.py
	$(VENV_PY) benchmarks/scale.py

clean:
	rm -rf build dist site .pytest_cache .mypy_cache .ruff_cache .import_linter_cache quickstart-project
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune \
	  -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# Headwater's one task runner: the README and CI call these targets and nothing else.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HEADWATER_LOCAL_DIR ?= $(CURDIR)/.local
# The unit tests share nothing: they run in parallel (pytest-xdist); 131 -> 77 s on 2 cores.
# The others share the local servers and measure real waits: one at a time.
UNIT_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install lint fmt services-up services-down services-status test test-unit bench dev dashboard-assets

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv and install Headwater with its dev tools

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

lint: install ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy engine schemas executors triggers

fmt: install ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

services-up: install ## Install (if missing) and start every local server (deploy/local/README.md)
	$(BIN)/python deploy/local/services.py up

services-down: ## Stop the local servers that deploy/local started
	@test -x $(BIN)/python && $(BIN)/python deploy/local/services.py down || python3 deploy/local/services.py down

bench: install ## Benchmark suite vs Prefect (BENCH_ARGS=--quick for a short run); updates benchmarks/RESULTS.md
	$(BIN)/python deploy/local/services.py up mqtt rabbitmq
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

services-status: ## Show the local servers and whether they answer
	$(BIN)/python deploy/local/services.py status

dev: install ## Set up and run `headwater dev`: embedded Kafka + PostgreSQL, every component, ./flows
	$(BIN)/headwater dev

dashboard-assets: ## Rebuild the dashboard's flow editor bundle with npm (from its lock file; the output is committed)
	cd engine/dashboard/editor && npm ci --no-audit --no-fund && npm test && npm run build

test-unit: install ## Unit tests only (no servers)
	$(BIN)/pytest -n $(UNIT_WORKERS) tests/unit

test: install lint ## The whole suite: installs what is missing, starts servers, runs every test (unit tests in parallel first), stops what it started
	@started=$$(mktemp); \
	$(BIN)/python deploy/local/services.py up --started-file "$$started" || { rm -f "$$started"; exit 1; }; \
	$(BIN)/pytest -n $(UNIT_WORKERS) tests/unit; unit=$$?; \
	$(BIN)/pytest --ignore=tests/unit --durations=20; rc=$$?; \
	$(BIN)/python deploy/local/services.py down --started-file "$$started"; rm -f "$$started"; \
	if [ $$unit -eq 5 ] || [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; \
	if [ $$unit -ne 0 ]; then exit $$unit; fi; \
	exit $$rc

# mfc developer tasks. `make demo` runs the example flow; `make test` installs and starts
# everything the tests need (virtualenv, Docker engine, base image, PostgreSQL, Chromium) and runs them.

PYTHON_BOOT ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PYTHON_BIN := $(VENV)/bin
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast bench lint services pg-up

help:
	@echo "make demo       run the example flow on the embedded local datastore"
	@echo "make test       install and start everything, then run the test suite"
	@echo "make test-fast  run the tests that need no Docker engine"
	@echo "make bench      print the benchmark figures"
	@echo "make lint       ruff and mypy over the code"
	@echo "make image      build the runtime image (see .ci/image.mk for image-gpu, image-service, base-os)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	cd examples && ../$(PYTHON_BIN)/mfc run branch_foreach.py --max-workers 4 && ../$(PYTHON_BIN)/mfc runs branch_foreach.py --limit 3

pg-up:
	bash .ci/pg-up.sh

# Docker and PostgreSQL are started when the machine allows it (root); tests that need them skip
# with a reason otherwise, and fail when CI=true or MFC_REQUIRE_DOCKER=1.
services: venv
	@bash .ci/docker-up.sh && $(MAKE) --no-print-directory image || { [ "$$CI" != "true" ] && [ "$$MFC_REQUIRE_DOCKER" != "1" ] && echo "note: no Docker engine; Docker tests will be skipped"; }
	@bash .ci/pg-up.sh >/dev/null 2>&1 || echo "note: PostgreSQL not started"
	@bash .ci/browser-up.sh >/dev/null 2>&1 || echo "note: no Chromium; the web UI tests will be skipped"

test: services
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

test-fast: venv
	$(PYTHON) -m pytest -q -m "not docker" $(PYTEST_ARGS)

bench: venv
	env -u PYTHONDONTWRITEBYTECODE $(PYTHON) benchmarks/run.py

lint: venv
	$(PYTHON_BIN)/ruff check mfc tests benchmarks examples
	$(PYTHON_BIN)/mypy

# The image targets download wheels with the virtualenv's Python: a fresh clone makes it first.
PYTHON_DEP := $(VENV)/.installed
include .ci/image.mk

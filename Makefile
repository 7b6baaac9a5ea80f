# The two set-up commands of the README: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
PYTHON ?= python3

.PHONY: run test lint format bench bench-quick chromium screenshots

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/commq serve

# Lint first: a style or layering break fails CI as surely as a failing test. One pytest
# process per core, at most four (2 cores, 2026-11-28: 730 s, against 988-1,050 s in one
# process). `.venv/bin/python -m pytest` alone runs serially.
test: lint chromium
	$(PY) -m pytest --numprocesses auto --maxprocesses 4

# The browser tests drive Debian's Chromium; install it when missing (a no-op when present).
CHROMIUM := /usr/bin/chromium
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)

chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-dejavu-core; }

# Screenshots of every dashboard page, at 1280 and 390 px wide, into docs/screenshots/.
# tests/ on the path: the live server it starts needs tests/serving.py, as pytest finds it.
screenshots: $(STAMP) chromium
	PYTHONPATH=tests $(PY) tests/browser/screenshots.py docs/screenshots

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format src tests
	$(VENV)/bin/ruff check --fix src tests

# The benchmark (docs/benchmarks.md). The peers live in their own venv, made from the
# `bench` extra, so that their dependencies (uvloop) never change the product's venv.
BENCH_VENV  := bench/.venv-peers
BENCH_STAMP := $(BENCH_VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(PY) -m bench

bench-quick: $(STAMP) $(BENCH_STAMP)
	$(PY) -m bench --quick

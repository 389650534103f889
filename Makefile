# Two commands a newcomer needs: `make run` and `make test` (`make lint` before a commit).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test test-fast lint bench bench-query bench-check bench-all clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP) $(DEV_STAMP) $@

# In a terminal the bot runs as a job of its own (bash -m): Ctrl-C reaches the bot alone, which
# finishes the cycle in flight and exits 0, and make then exits 0 too (a SIGINT that reached make
# itself would end it with "Interrupt" and status 130 whatever the bot did).
run: $(STAMP)
	@if [ -t 0 ] && command -v bash >/dev/null; then \
		bash -m -c '"$$0" run; exit $$?' $(BIN)/tradebot; \
	else \
		$(BIN)/tradebot run; \
	fi

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

# the suite less the tests marked slow (crash, browser, container, and those over ~0.4 s): under a minute
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -m "not slow"

# ruff (lint, import order) over the repository, mypy over bot, audit, models, and the import
# contracts of pyproject.toml ([tool.importlinter]); all three run, any one fails it
lint: $(DEV_STAMP)
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/lint-imports --no-cache --no-logo || status=1; \
	exit $$status

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_simulate.py

bench-query: $(BENCH_STAMP)  # the 1M-line trail goes to a temporary directory, removed after
	$(BIN)/python benchmarks/bench_query.py

bench-check: $(STAMP)
	$(BIN)/python benchmarks/bench_check.py

bench-all: bench bench-query bench-check
	$(BIN)/python benchmarks/bench_fsync.py
	$(BIN)/python benchmarks/bench_verify.py
	$(BIN)/python benchmarks/kill_restart.py --kills 200

clean:
	rm -rf $(VENV) build *.egg-info

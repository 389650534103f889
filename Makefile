# Two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test bench bench-query bench-check bench-all clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

run: $(STAMP)
	$(BIN)/tradebot run

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_simulate.py

bench-query: $(DEV_STAMP)
	$(BIN)/python benchmarks/bench_query.py

bench-check: $(STAMP)
	$(BIN)/python benchmarks/bench_check.py

bench-all: bench bench-query bench-check
	$(BIN)/python benchmarks/bench_fsync.py
	$(BIN)/python benchmarks/bench_verify.py
	$(BIN)/python benchmarks/kill_restart.py --kills 200

clean:
	rm -rf $(VENV) build *.egg-info

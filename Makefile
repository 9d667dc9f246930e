# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## demo: create .venv, install, import and analyse the demo elections, serve the dashboard
demo: $(STAMP)
	$(BIN)/pollwatch demo

## test: ruff (lint + format), mypy and pytest
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

## bench: speed and memory against the reference approach, reported as ratios
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_evidence.py
	@if [ -f benchmarks/bench_integer_peaks.py ]; then $(BIN)/python benchmarks/bench_integer_peaks.py; fi
	$(BIN)/python benchmarks/bench_suite.py
	$(BIN)/python benchmarks/bench_web.py
	$(BIN)/python benchmarks/bench_calibration.py
	$(BIN)/python benchmarks/bench_video_record.py
	$(BIN)/python benchmarks/bench_video_blur.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

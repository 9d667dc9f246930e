# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit test-streams bench clean lock

LOCK := requirements.lock
UV_VERSION := 0.13.8

# Every dependency comes from the lock (exact versions, hashes checked); the package itself is
# installed on top without resolving anything.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## lock: re-resolve every dependency to the newest allowed release and rewrite requirements.lock
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet uv==$(UV_VERSION)
	.venv-lock/bin/uv pip compile pyproject.toml requirements/build.in --extra dev \
		--universal --fork-strategy fewest --python-version 3.11 --generate-hashes \
		--no-header --upgrade -o $(LOCK)

## demo: create .venv, install, import and analyse the demo elections, serve the dashboard
demo: $(STAMP)
	$(BIN)/pollwatch demo

## test: ruff (lint + format), mypy, pytest, and the Monte Carlo tests on two other random streams
test: lint typecheck unit test-streams

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

## test-streams: forensics and calibration tests with every seed salted (docs/testing.md)
test-streams: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider --seed-salt 1 tests/forensics tests/calibration
	$(BIN)/pytest -q -p no:cacheprovider --seed-salt 2 tests/forensics tests/calibration

## bench: speed and memory against the reference approach, reported as ratios
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_evidence.py
	@if [ -f benchmarks/bench_integer_peaks.py ]; then $(BIN)/python benchmarks/bench_integer_peaks.py; fi
	$(BIN)/python benchmarks/bench_suite.py
	$(BIN)/python benchmarks/bench_openelections.py
	$(BIN)/python benchmarks/bench_web.py
	$(BIN)/python benchmarks/bench_uploads.py
	$(BIN)/python benchmarks/bench_calibration.py
	$(BIN)/python benchmarks/bench_video_record.py
	$(BIN)/python benchmarks/bench_video_blur.py

clean:
	rm -rf $(VENV) .venv-lock .mypy_cache .pytest_cache .ruff_cache

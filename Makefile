# Two commands for a fresh machine: `make run` (the portal, on SQLite, with the sandbox)
# and `make test` (lint + the whole test suite). `make check` is the quick loop while working.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

# Tests run in parallel processes (pytest-xdist). They mostly wait on loopback HTTP and on the
# processes they start, so more workers than cores pays; PYTEST_WORKERS=0 runs in one process.
# A few modules run whole in one worker and go out first (tests/parallel.py SERIAL_MODULES).
PYTEST_WORKERS ?= 4
XDIST := -n $(PYTEST_WORKERS)
# `make check` leaves out what takes long or needs more than the code: the matrices, the
# production proof and the tests that start processes (marked slow), and the browser.
QUICK := not slow and not browser and not production
# `make test-windows`: the suite with the process clock inside each KOT window (JST).
WINDOW_TIMES ?= 09:15 17:45

.PHONY: run test check test-at test-windows reports lint typecheck format setup env migrate \
	demo sandbox browser-deps faketime-deps bench lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Installs exactly the lock file: every package, transitive ones included, checked by hash.
$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP) env

env: | $(PY)
	$(PY) scripts/bootstrap_env.py

migrate: setup
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo

## The portal: web server + django-q2 cluster + sandbox, on http://127.0.0.1:8000/
run: demo
	$(PY) manage.py devserver

## Lint, type-check connectors/, then every test (browser tests included) with a coverage report.
## Writes the reliability report's sections to test-artifacts/reports/ (`make reports` uses them).
test: setup browser-deps lint typecheck
	$(BIN)/pytest $(XDIST) --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

## The quick loop: lint, types, and every test not marked slow, browser or production (the
## property tests with a tenth of their examples: tests/conftest.py `examples`).
check: setup lint typecheck
	QUICK_PROPERTIES=1 $(BIN)/pytest $(XDIST) -q -m "$(QUICK)" $(PYTEST_ARGS)

## The whole suite (no lint, no coverage) with the process clock at AT=HH:MM JST today
## (libfaketime), e.g. `make test-at AT=09:15 PYTEST_ARGS=tests/test_healthz.py`. Its report
## sections go to test-artifacts/reports-at/: `make reports` never takes a faked clock's.
test-at: setup faketime-deps
	@test -n "$(AT)" || { echo "usage: make test-at AT=HH:MM [PYTEST_ARGS=...]" >&2; exit 2; }
	REPORT_FRAGMENTS_DIR=$(CURDIR)/test-artifacts/reports-at \
		$(PY) scripts/at_jst.py $(AT) -- $(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

## The whole suite at each of WINDOW_TIMES (inside KOT's 08:30-10:00 and 17:30-18:30 windows):
## a test that forgot to pin its clock fails here, not at random on a developer's morning.
test-windows: setup faketime-deps
	@set -e; for at in $(WINDOW_TIMES); do \
		echo "=== the test suite at $$at JST ==="; \
		REPORT_FRAGMENTS_DIR=$(CURDIR)/test-artifacts/reports-at \
			$(PY) scripts/at_jst.py $$at -- $(BIN)/pytest $(XDIST) $(PYTEST_ARGS); \
	done

## docs/RELIABILITY.md from the sections the last test runs wrote (test-artifacts/reports/);
## a section no test run wrote keeps its committed text. REPORT_ARGS=--print shows the result.
reports: setup
	$(PY) -m tests.fault_matrix_report $(REPORT_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## mypy with django-stubs on connectors/ (configuration in pyproject.toml); any error fails.
typecheck: $(STAMP)
	$(BIN)/mypy

## Rewrite the lock files from requirements.in / requirements-dev.in (pins + sha256 hashes).
lock: | $(PY)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-dev.txt
	$(BIN)/uv pip compile requirements.in --generate-hashes --python-version 3.11 \
		--custom-compile-command "make lock" --quiet -o requirements.txt
	$(BIN)/uv pip compile requirements-dev.in --generate-hashes --python-version 3.11 \
		--custom-compile-command "make lock" --quiet -o requirements-dev.txt

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Debian's Chromium and Japanese fonts for the Playwright browser tests.
browser-deps:
	@bash scripts/ensure_browser.sh

## Debian's libfaketime for `make test-at` and `make test-windows`.
faketime-deps:
	@bash scripts/ensure_faketime.sh

sandbox: setup
	$(PY) manage.py sandbox

bench: setup
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts

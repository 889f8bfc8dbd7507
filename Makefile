# Two commands for a fresh machine: `make run` (the portal, on SQLite, with the sandbox)
# and `make test` (lint + the whole test suite). Everything else here serves those two.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck format setup env migrate demo sandbox browser-deps bench lock clean

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
test: setup browser-deps lint typecheck
	$(BIN)/pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

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

sandbox: setup
	$(PY) manage.py sandbox

bench: setup
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

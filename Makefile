# Two commands for a fresh machine: `make run` (the portal, on SQLite, with the sandbox)
# and `make test` (lint + the whole test suite). Everything else here serves those two.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format setup env migrate demo sandbox browser-deps bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
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

## Lint, then every test (browser tests included).
test: setup browser-deps lint
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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

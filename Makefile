# Two commands on a fresh machine: `make run` (server on the embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := app

.PHONY: install run demo worker test test-sqlite test-postgres screenshots lint fmt bench clean

$(BIN)/flask: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/flask

install: $(BIN)/flask

# Embedded default: SQLite in ./instance, jobs inline. Migrates, seeds the demo tenant (idempotent,
# prints how to sign in to the portal), then serves on :5000.
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask demo
	$(BIN)/flask run --host $${HOST:-127.0.0.1} --port $${PORT:-5000}

worker: install
	$(BIN)/python worker.py

# The suite on SQLite, then on PostgreSQL (skipped with a notice when PostgreSQL is unreachable,
# a failure when NHI_TEST_REQUIRE_SERVICES=1 as in CI).
test: install test-sqlite test-postgres

test-sqlite: install
	NHI_TEST_DB=sqlite $(BIN)/pytest -q $(PYTEST_ARGS)

test-postgres: install
	NHI_TEST_DB=postgresql $(BIN)/pytest -q $(PYTEST_ARGS)

# Re-take the portal screenshots in docs/ from the browser tests (SQLite, headless Chromium).
screenshots: install
	NHI_TEST_DB=sqlite NHI_TEST_SCREENSHOTS=1 $(BIN)/pytest -q tests/e2e -k browser

lint: install
	$(BIN)/ruff check nhi tests app.py worker.py bench
	$(BIN)/ruff format --check nhi tests app.py worker.py bench
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format nhi tests app.py worker.py bench
	$(BIN)/ruff check --fix nhi tests app.py worker.py bench

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

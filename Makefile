# The two commands: `make run` (try it) and `make test` (prove it). Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench clean

# editable_mode=compat puts the checkout itself on the path, so the development tools (devtools/) import
# in a development install; a plain `pip install .` leaves them out.
$(BIN)/wxbot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

install: $(BIN)/wxbot

run: install
	$(BIN)/wxbot demo

# The suite in one pytest-xdist worker per core (TEST_WORKERS=0 for one process); every worker has its own
# PostgreSQL database, Redis logical database and SQLite files (tests/conftest.py, tests/support/backends.py).
TEST_WORKERS ?= auto
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# By hand, not in CI; options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--concurrency 16"
bench: install
	$(BIN)/python bench/webhook.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

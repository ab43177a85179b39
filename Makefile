# Payment recovery: `make demo` plays a campaign on the embedded default; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Test processes: four by default, since most tests wait on servers and processes rather than
# compute (`make test TEST_WORKERS=0` runs in this process, `TEST_WORKERS=auto` one per core).
TEST_WORKERS ?= 4

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_UI_ENABLED ?= true

.PHONY: install demo test test-postgres lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# Prefect's migrations, once: the embedded server begins each new database from this copy.
	$(BIN)/python -m recovery.embedded.prefect_server template
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m recovery.demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

test-postgres: $(STAMP)
	RECOVERY_TEST_POSTGRES_URL=$${RECOVERY_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
		$(BIN)/python -m pytest -m postgres

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/compliance.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/pan_guard.py
	$(BIN)/python bench/backfill.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

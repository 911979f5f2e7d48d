# Herald: `make run` runs it locally (SQLite + sandbox); `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run_local.py

test: $(STAMP)
	bash scripts/ensure_postgres.sh
	$(BIN)/python -m pytest

bench: $(STAMP)
	bash scripts/ensure_postgres.sh
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) herald.db herald.db-wal herald.db-shm

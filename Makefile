# The README's commands. Each target sets up its own virtual environment first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup serve test test-slow lint bench docs clean

$(BIN)/nexus: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: $(BIN)/nexus

## Start the Nexus server on the embedded default (SQLite + blobs in ./nexus-data).
serve: setup
	$(BIN)/nexus serve --host 127.0.0.1 --port 8080 --data-dir ./nexus-data

## Lint, then every test (SQLite and PostgreSQL) except the slow ones.
test: setup
	$(BIN)/ruff check src tests bench examples
	$(BIN)/python -m pytest -m "not slow" -p no:cacheprovider -n auto --dist loadscope --durations=15

## The slow, full-size runs.
test-slow: setup
	$(BIN)/python -m pytest -m slow -p no:cacheprovider

## Regenerate docs/cli.md from the CLI itself (tests/cli/test_reference.py checks it).
docs: setup
	$(BIN)/python -m nexus.cli.reference > docs/cli.md

bench: setup
	$(BIN)/python bench/engine.py --backend both

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

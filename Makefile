# Common tasks. `make run` starts the whole local stack; `make test` runs the suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup system-deps run test unit integration lint typecheck format bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: system-deps $(VENV)/.installed

system-deps:
	@bash scripts/system-deps.sh

run: setup
	$(PY) scripts/run_stack.py

test: setup lint typecheck
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest -m unit

integration: setup
	$(PY) -m pytest -m integration

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

format: $(VENV)/.installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .run

# Each target creates .venv from nothing when it is missing (or when pyproject.toml changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test sandbox-start sandbox-stop benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

test: $(VENV)/.installed
	$(BIN)/python -m pytest

sandbox-start: $(VENV)/.installed
	$(BIN)/runbook sandbox start

sandbox-stop: $(VENV)/.installed
	$(BIN)/runbook sandbox stop

benchmark: $(VENV)/.installed
	$(BIN)/python benchmarks/sandbox_start.py

clean:
	rm -rf $(VENV) .sandbox *.egg-info

# Each target creates .venv from nothing when it is missing (or when a pyproject.toml changed): the runbook
# with its dev extras, and the sandbox (sandbox/, its own distribution: installing the runbook alone
# does not pull moto).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_SANDBOX := .sandbox/demo
DEMO_RUN := runs/demo
LAB_SANDBOX := .sandbox
LAB_ARGS ?=
DOCS_SANDBOX := .sandbox/docs
DOCS_RUN := runs/docs
SITE := site
# What the demo's run depends on: made again only when one of them changed (or .venv was rebuilt).
DOCS_RUN_SOURCES = $(VENV)/.installed parameters/sandbox.yaml $(wildcard notebooks/*.ipynb) \
	$(shell find runbook_lib runbook_policy sandbox/runbook_sandbox -name '*.py' -o -name '*.json')

.PHONY: demo test stress lab benchmark clean bytecode chromium docs

# uv installs the same packages as pip in a third of the time (17 s, not 49 s, measured on two cores from a
# warm cache), their bytecode compiled as pip compiles it (where PYTHONDONTWRITEBYTECODE is set, a package
# left without it is compiled again by every process that imports it); pip installs them where uv cannot be had.
$(VENV)/.installed: pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv && $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]' -e ./sandbox \
	  || $(BIN)/python -m pip install --quiet -e '.[dev]' -e ./sandbox
	touch $@

# An editable install leaves the library without bytecode; where PYTHONDONTWRITEBYTECODE is set, every
# process (each command, kernel and sandbox the tests start) would compile it again.
bytecode: $(VENV)/.installed
	@$(BIN)/python -m compileall -q runbook_lib runbook_policy sandbox tests benchmarks tools

# The whole walkthrough, headless, on a fresh sandbox that is stopped whatever happens.
# KEEP_SANDBOX=1 leaves the demo's sandbox running (with what the run made) for the steps after it.
demo: bytecode
	@rm -rf $(DEMO_RUN)
	@trap '$(if $(KEEP_SANDBOX),,trap "" INT; $(BIN)/runbook sandbox stop --dir $(DEMO_SANDBOX))' EXIT; trap 'exit 130' INT TERM; \
	$(BIN)/runbook sandbox stop --dir $(DEMO_SANDBOX) >/dev/null 2>&1; \
	$(BIN)/runbook sandbox start --dir $(DEMO_SANDBOX) --job-seconds 2 && \
	$(BIN)/runbook sandbox reset --dir $(DEMO_SANDBOX) --scenario walkthrough && \
	. $(DEMO_SANDBOX)/sandbox.env && \
	$(BIN)/runbook run parameters/sandbox.yaml --out $(DEMO_RUN)$(if $(KEEP_SANDBOX), && \
	echo "The sandbox keeps running: source $(DEMO_SANDBOX)/sandbox.env; stop it with: runbook sandbox stop --dir $(DEMO_SANDBOX)",)

# The demo's run that the site shows: the demo's recipe, into a run folder and on a sandbox of its own.
$(DOCS_RUN)/.made: $(DOCS_RUN_SOURCES) | bytecode
	@$(MAKE) --no-print-directory -o bytecode demo DEMO_SANDBOX=$(DOCS_SANDBOX) DEMO_RUN=$(DOCS_RUN)
	@touch $@

# The documentation site (mkdocs.yml) into $(SITE): the pages of docs/ and sandbox/docs/, and the demo's
# executed notebooks (tools/mkdocs_hooks.py), built strictly and executing no notebook. A broken link or
# anchor, a page missing from the navigation, or a notebook the demo did not write fails it.
# python -m tools.site is the mkdocs command, 2 s of CPU quicker to start.
docs: $(DOCS_RUN)/.made
	RUNBOOK_DOCS_RUN=$(DOCS_RUN) $(BIN)/python -m tools.site build --strict --site-dir $(SITE)

# The browser test drives Debian's chromium (never a downloaded browser build): installed with apt-get
# when missing and make runs as root, else make stops with the command that installs it.
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser test (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make test needs Debian's chromium for its browser test: sudo apt-get install chromium" >&2; exit 1; \
	  fi; }

# Lint and format, then the type check beside the tests (which leave part of the two cores idle, waiting on
# jobs and kernels); each test process starts its own sandbox. `make docs` is one of the tests
# (tests/project/test_docs.py), into folders of its own. Fails if any fails.
test: bytecode chromium
	$(BIN)/ruff check runbook_lib runbook_policy sandbox tests benchmarks tools
	$(BIN)/ruff format --check runbook_lib runbook_policy sandbox tests benchmarks tools
	@types=$$(mktemp); \
	$(BIN)/python -m mypy > $$types 2>&1 & checking=$$!; \
	$(BIN)/python -m pytest -n 5 --dist load --maxschedchunk 1 --durations=10; tests=$$?; \
	wait $$checking; typed=$$?; \
	echo "$(BIN)/python -m mypy"; cat $$types; rm -f $$types; \
	test $$tests -eq 0 && test $$typed -eq 0

# The tests that wait out minutes of throttling backoff (marked stress).
stress: bytecode
	$(BIN)/python -m pytest -m stress

# JupyterLab on the notebooks, against a sandbox (stopped when JupyterLab exits); as root too (containers).
# The stop ignores Ctrl-C: JupyterLab asks for a second one, which would otherwise cut the stop short.
# More options for JupyterLab: make lab LAB_ARGS="--no-browser --port 8899".
lab: bytecode
	@trap 'trap "" INT; $(BIN)/runbook sandbox stop --dir $(LAB_SANDBOX)' EXIT; trap 'exit 130' INT TERM; \
	$(BIN)/runbook sandbox start --dir $(LAB_SANDBOX) --job-seconds 10 && \
	. $(LAB_SANDBOX)/sandbox.env && \
	$(BIN)/jupyter lab notebooks/ $$(test "$$(id -u)" -eq 0 && echo --allow-root) $(LAB_ARGS)

benchmark: bytecode
	$(BIN)/python sandbox/benchmarks/sandbox_start.py
	$(BIN)/python benchmarks/cli_speed.py
	$(BIN)/python benchmarks/aws_calls.py
	$(BIN)/python benchmarks/run_speed.py
	$(BIN)/python sandbox/benchmarks/sandbox_calls.py
	$(BIN)/python sandbox/benchmarks/http_server.py

clean:
	rm -rf $(VENV) .sandbox runs $(SITE) *.egg-info

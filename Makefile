# One entry point for every check. `make demo` runs the main job, `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The distributions of this repository that exist (backends are added as they land).
BACKENDS := $(wildcard asyncstore_fs asyncstore_s3)
PACKAGES := asyncstore $(wildcard asyncstore_fs/asyncstore_fs asyncstore_s3/asyncstore_s3)

.PHONY: install demo test lint typecheck pytest reliability clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.10 is required") if sys.version_info < (3, 10) else None'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml $(wildcard asyncstore_*/pyproject.toml)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77"
	$(BIN)/python -m pip install --quiet --no-build-isolation -e ".[dev]" $(foreach d,$(BACKENDS),-e $(d))
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python -m asyncstore.demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy $(PACKAGES)

# One worker per core, at most 4 (each worker starts its own S3 servers).
PYTEST_WORKERS ?= auto --maxprocesses=4
pytest: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

test: lint typecheck pytest

# The reliability harness at full scale; docs/reliability.md is rewritten only if it passes.
# RELIABILITY_TESTS narrows the run (the parts not run then say so in the report).
RELIABILITY_TESTS ?= tests/reliability
reliability: install
	@figures=$$(mktemp -d) && \
	ASYNCSTORE_RELIABILITY=full ASYNCSTORE_RELIABILITY_FIGURES="$$figures/figures.json" \
		$(BIN)/python -m pytest -q $(RELIABILITY_TESTS) -p no:cacheprovider && \
	$(BIN)/python -m tests.reliability.report "$$figures/figures.json" docs/reliability.md; \
	status=$$?; rm -rf "$$figures"; exit $$status

clean:
	rm -rf $(VENV) .demo-store .mypy_cache .pytest_cache .ruff_cache .hypothesis

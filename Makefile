# vehicle-ocr: every command a developer or CI needs. `make test` is what CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install lint format check-template unit integration test build events clean

help:
	@echo "make test            install, lint, check the template, run every test (what CI runs)"
	@echo "make lint            ruff check + ruff format --check"
	@echo "make check-template  sam validate (--lint), cfn-lint on the transformed template, checkov"
	@echo "make build           sam build (needs python3.12 on PATH; pyenv's 3.12 is picked up)"
	@echo "make events          regenerate events/ with sam local generate-event"
	@echo "make format          ruff format + import sorting"

# The virtualenv is rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

check-template: install
	scripts/check-template.sh

unit: install
	$(BIN)/pytest tests/unit -q

integration: install
	$(BIN)/pytest tests/integration -q

test: lint check-template
	$(BIN)/pytest -q

# SAM builds the layer with python3.12 (the Lambda runtime). With pyenv, its 3.12 is added to the path.
build: install
	@py312=$$(command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | tail -1); \
	if ! python3.12 --version >/dev/null 2>&1 && [ -n "$$py312" ]; then \
		export PYENV_VERSION="$$(pyenv version-name):$$py312"; \
	fi; \
	SAM_CLI_TELEMETRY=0 $(BIN)/sam build

events: install
	$(BIN)/python scripts/generate_events.py

clean:
	rm -rf .aws-sam build .pytest_cache .ruff_cache

# vehicle-ocr: every command a developer or CI needs. `make test` is what CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# make demo / make up need the runtime and the `local` extra only (the offline engine, moto, rich):
# not SAM CLI, cfn-lint, pytest or ruff, which `.[dev]` adds for the other targets.
LOCAL_STAMP := $(VENV)/.installed-local
# Test modules run in parallel (pytest-xdist), one worker more than there are cores: about a fifth of
# the suite is waiting (subprocesses, the emulator, stalled upstream answers), which the extra worker
# fills (2 cores: 4:32 with 2 workers, 3:58 with 3, 4:02 with 4). A module stays on one worker, so the
# modules that share one emulated stack across their tests keep it to themselves. The longest modules go
# first (tests/conftest.py, LONG_MODULES), in the order collected. PYTEST_WORKERS=0: serial.
PYTEST_WORKERS ?= $(shell echo $$(( $$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1) + 1 )))
# The virtualenv is installed without bytecode (--no-compile below): Python compiles each module the
# first time it is imported and keeps it. With PYTHONDONTWRITEBYTECODE set in the shell it keeps
# nothing, and every process compiles every module it imports, every time (the tests took 1.5 min
# longer): make's commands write bytecode, into .venv and git-ignored __pycache__ folders.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: typecheck help install install-local lint format check-template unit integration test bench build deploy deploy-local-engine lock events openapi up demo clean

help:
	@echo "make demo            the whole pipeline on the sample images, locally; prints a table"
	@echo "make up              the local stack, kept running (AWS on :4566, query API on :3000)"
	@echo "make test            install, lint, check the template, run every test (what CI runs)"
	@echo "make lint            ruff check + ruff format --check"
	@echo "make typecheck       mypy on layers/ and src/"
	@echo "make check-template  sam validate (--lint), cfn-lint on the transformed template, checkov"
	@echo "make bench           benchmarks (~11 min): overhead, throughput, local burst, cold start, paid calls, engine; bench/REPORT.md"
	@echo "make build           sam build (needs python3.12 on PATH; pyenv's 3.12 is picked up)"
	@echo "make deploy          make build, then .venv/bin/sam deploy --guided (DEPLOY_FLAGS= to deploy from samconfig.toml)"
	@echo "make deploy-local-engine  the same, RecognizeFunction as a container image with the offline engine (Docker)"
	@echo "make lock            pin the layer's whole dependency tree, with hashes (layers/common/requirements.in -> .txt)"
	@echo "make events          regenerate events/ with sam local generate-event"
	@echo "make openapi         regenerate docs/openapi.json from the query API's routes"
	@echo "make format          ruff format + import sorting"

# The virtualenv is rebuilt when pyproject.toml changes. `.[dev]` includes `.[local]`, so the
# full install also satisfies demo and up; the local one alone leaves the dev stamp stale.
# --no-compile: pip would compile every module of every package (SymPy alone, which onnxruntime
# brings, is 1,500 files): 112 s against 41 s. Python compiles what is imported, once, on first use
# (unless PYTHONDONTWRITEBYTECODE is set: see the unexport at the top).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e '.[dev]'
	touch $@ $(LOCAL_STAMP)

$(LOCAL_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e '.[local]'
	touch $@

install: $(STAMP)

install-local: $(LOCAL_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

check-template: install
	scripts/check-template.sh

unit: install
	$(BIN)/pytest tests/unit -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

integration: install
	$(BIN)/pytest tests/integration -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The layer and the local side, type-checked (tests and scripts are not).
typecheck: install
	$(BIN)/mypy

# The three checks run side by side (each is one process on one core; check-template alone takes about
# a minute), grouped per check in the output where make can (GNU make 4), then the tests on every core.
test: install
	$(MAKE) --no-print-directory --jobs=3 $(if $(filter 3.%,$(MAKE_VERSION)),,--output-sync=target) \
		lint typecheck check-template
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Figures with their targets, bench/REPORT.md (committed) and bench/results/latest.json.
bench: install
	$(BIN)/python -m bench

# The demo's picture goes under build/ (ignored), so a demo leaves a clone clean. README's picture,
# docs/console.png, is refreshed on purpose: make demo SCREENSHOT=docs/console.png
SCREENSHOT ?= build/console.png
demo: install-local
	$(BIN)/vehicle-ocr demo --screenshot $(SCREENSHOT)

up: install-local
	$(BIN)/vehicle-ocr up

# SAM builds the layer with python3.12 (the Lambda runtime); pyenv's 3.12 is picked up if needed.
build: install
	scripts/sam-build.sh

# sam deploy of what `make build` built (.aws-sam/build). --guided asks for the stack name, region and
# parameters and can save the answers in samconfig.toml; then `make deploy DEPLOY_FLAGS=` asks nothing.
DEPLOY_FLAGS ?= --guided
deploy: build
	SAM_CLI_TELEMETRY=0 $(BIN)/sam deploy $(DEPLOY_FLAGS)

# The same stack with RecognizeFunction as a container image holding the offline engine (needs Docker):
# the template is derived from template.yaml (scripts/local_engine_template.py), checked by check-template.
deploy-local-engine: install
	$(BIN)/python scripts/local_engine_template.py -o build/template.local-engine.json
	SAM_CLI_TELEMETRY=0 $(BIN)/sam build -t build/template.local-engine.json
	SAM_CLI_TELEMETRY=0 $(BIN)/sam deploy --resolve-image-repos $(DEPLOY_FLAGS)

# The layer's dependencies: top-level intent in requirements.in, the whole tree pinned with
# hashes in requirements.txt, resolved for Lambda's platform (x86_64 Linux, CPython 3.12,
# wheels only) whatever machine runs it. Pins already in requirements.txt are kept unless
# requirements.in needs otherwise; `make lock LOCK_FLAGS=--upgrade` moves everything to the newest.
lock: install
	$(BIN)/uv pip compile layers/common/requirements.in --output-file layers/common/requirements.txt \
		--python-version 3.12 --python-platform x86_64-manylinux_2_28 --only-binary :all: \
		--generate-hashes --custom-compile-command "make lock" --quiet $(LOCK_FLAGS)

events: install
	$(BIN)/python scripts/generate_events.py

openapi: install
	$(BIN)/python scripts/generate_openapi.py

clean:
	rm -rf .aws-sam build .pytest_cache .ruff_cache

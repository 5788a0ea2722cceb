#!/usr/bin/env bash
# sam build, offline apart from PyPI. The layer is built with python3.12 (the Lambda runtime);
# when python3.12 is not on PATH but pyenv has a 3.12, that one is used.
#   scripts/sam-build.sh [BUILD_DIR]   (default .aws-sam/build)
#   scripts/sam-build.sh --check       exit 0 when a python3.12 can be found, 3 otherwise
#   scripts/sam-build.sh --python      print that python3.12's path (bench/cold_start.py runs it)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${1:-.aws-sam/build}"
if ! python3.12 --version >/dev/null 2>&1 && command -v pyenv >/dev/null 2>&1; then
  py312="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | tail -1 || true)"
  if [ -n "$py312" ]; then
    export PYENV_VERSION="$(pyenv version-name):$py312"
  fi
fi
if ! python3.12 --version >/dev/null 2>&1; then
  echo "sam build needs python3.12 on PATH (the Lambda runtime)" >&2
  exit 3
fi
[ "$BUILD_DIR" = "--check" ] && exit 0
if [ "$BUILD_DIR" = "--python" ]; then
  exec python3.12 -c 'import sys; print(sys.executable)'
fi
if [ ! -x "$ROOT/.venv/bin/sam" ]; then
  echo "sam build needs the SAM CLI, which lives in .venv: run \`make build\` (it installs .venv first) or \`make install\`" >&2
  exit 3
fi
export SAM_CLI_TELEMETRY=0
exec "$ROOT/.venv/bin/sam" build --build-dir "$BUILD_DIR" --cache-dir "$ROOT/.aws-sam/cache" --cached

#!/usr/bin/env bash
# Create .venv with the locked dependencies: uv when it is there (or can be had from PyPI), pip otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "ladder needs Python 3.11 or newer; '$py' is $("$py" --version 2>&1)." >&2
  exit 1
fi

uv=$(command -v uv || true)
if [ -z "$uv" ]; then
  if "$py" -m uv --version >/dev/null 2>&1; then
    uv="$py -m uv"
  elif "$py" -m pip install --quiet --user uv >/dev/null 2>&1 || "$py" -m pip install --quiet uv >/dev/null 2>&1; then
    uv="$py -m uv"
  fi
fi

if [ -n "$uv" ]; then
  echo "==> installing locked dependencies into .venv (uv)"
  $uv sync --frozen --all-extras --compile-bytecode --python "$py" --quiet
else
  echo "==> uv not available; installing into .venv with pip (slower)"
  "$py" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[embedded]' --group dev  # pip >= 25.1 reads pyproject's groups
fi

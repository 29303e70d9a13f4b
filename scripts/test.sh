#!/usr/bin/env bash
# Prepare the environment, lint (ruff, then the import-layers contract of pyproject.toml), then run pytest (extra
# arguments go to pytest).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
scripts/setup.sh --with-postgres
.venv/bin/ruff check .
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Prepare the environment, lint (ruff, then the import-layers contract of pyproject.toml), then run pytest on two
# worker processes (pytest-xdist); extra arguments go to pytest and win over these (`-n 0` runs in one process).
# Exits non-zero when anything fails, and when no test ran.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
scripts/setup.sh --with-postgres
.venv/bin/ruff check .
.venv/bin/lint-imports
status=0
.venv/bin/python -m pytest -n 2 --dist loadgroup --durations=20 "$@" || status=$?
if ((status == 5)); then
    echo "test.sh: no test ran (pytest exit status 5): treated as a failure" >&2
    exit 1
fi
exit "$status"

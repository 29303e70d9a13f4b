#!/usr/bin/env bash
# Prepare the environment, then run the demo (validates the example tariff and rates a few calls).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
exec .venv/bin/occ demo "$@"

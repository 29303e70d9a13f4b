#!/usr/bin/env bash
# Prepare the environment, then run the charging server with the example tariff and a demo account
# (embedded Redis and data under ./data; Ctrl-C stops it). Extra arguments go to `occ serve`.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
OCC_LOG_JSON=${OCC_LOG_JSON:-false} exec .venv/bin/occ serve --tariff examples/tariff --demo "$@"

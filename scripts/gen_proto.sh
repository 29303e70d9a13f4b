#!/usr/bin/env bash
# Generate the Python gRPC code for proto/occ/v1/*.proto into occ/v1/ (git-ignored; never edited by hand).
# Skips the work when the .proto files are unchanged since the last run. Needs grpcio-tools (a dev dependency).
#   scripts/gen_proto.sh [PYTHON]     PYTHON defaults to .venv/bin/python
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
python=${1:-.venv/bin/python}
stamp=occ/v1/.generated
want=$(cat proto/occ/v1/*.proto | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(<"$stamp") == "$want" ]] && ls occ/v1/*_pb2.py >/dev/null 2>&1; then
    exit 0
fi
printf '[setup] generating gRPC code from proto/occ/v1\n' >&2
rm -f occ/v1/*_pb2.py occ/v1/*_pb2.pyi occ/v1/*_pb2_grpc.py
"$python" -m grpc_tools.protoc -I proto --python_out=. --pyi_out=. --grpc_python_out=. proto/occ/v1/*.proto
printf '%s\n' "$want" >"$stamp"

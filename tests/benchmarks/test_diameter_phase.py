"""End to end: ``occ bench --phases diameter,correctness`` against an OCC it starts with its Diameter gateway on: the
same calls over Diameter and gRPC, every call ended, charged exactly once, and the correctness checks clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.online.diameter_phase import money_check

OCC = Path(sys.executable).parent / "occ"


def test_occ_bench_diameter_phase_beside_grpc(tmp_path: Path) -> None:
    results = tmp_path / "results"
    command = [str(OCC), "bench", "--phases", "diameter,correctness", "--seconds", "1", "--accounts", "4",
               "--diameter-concurrency", "4", "--results-dir", str(results)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((results / "online.json").read_text())["diameter"]

    for side in ("diameter", "grpc"):
        figures = report[side]
        assert figures["errors"] == {} and figures["unended"] == [] and figures["calls"] > 0
        assert figures["codes"] == {f"{kind}:2001": figures["calls"] for kind in ("start", "update", "end")}
        assert figures["pairs"] == 3 * figures["calls"]
        assert set(figures["latency_ms_by_kind"]) == {"start", "update", "end"}
        assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"] <= figures["latency_ms"]["max"]
        assert figures["server_cpu_us_per_pair"] > 0
    assert set(report["diameter_over_grpc"]) == {"pairs_per_s", "p99", "server_cpu_per_pair"}
    calls = report["diameter"]["calls"] + report["grpc"]["calls"]
    assert report["money"] == {
        "status": "exact",
        "calls": calls,
        "expected_micros": calls * 150_000,
        "charged_micros": calls * 150_000,
        "violations": 0,
    }  # 0.05 + 50 s at 0.12/min
    summary = (results / "summary.md").read_text()
    assert "## Diameter gateway vs gRPC (same calls, same run)" in summary
    assert "| correctness violations = 0 | 0 | PASS |" in summary


@pytest.mark.parametrize(("charged", "status", "violations"), [(300, "exact", 0), (400, "mismatch", 1)])
def test_the_money_check_counts_a_call_charged_twice(charged: int, status: str, violations: int) -> None:
    diameter = {"calls": 2, "unended": [], "call_costs_micros": {}}
    grpc_side = {"calls": 1, "unended": [], "call_costs_micros": {100: 1}}
    checked = money_check(diameter, grpc_side, charged)
    assert (checked["status"], checked["violations"], checked["expected_micros"]) == (status, violations, 300)

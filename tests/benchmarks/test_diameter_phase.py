"""The ``diameter`` phase of ``occ bench``: the same calls over Diameter and gRPC, every call ended and charged
exactly once. In the default run against an OCC served in this process (the phase runs in a thread of its own, with
its own event loop); end to end, ``occ bench --phases diameter,correctness`` starting its own OCC, marked ``slow``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from online_app import serving

from benchmarks.online import diameter_phase
from benchmarks.online.diameter_phase import CallLoad, money_check
from benchmarks.online.machine import free_port

OCC = Path(sys.executable).parent / "occ"


def check_sides(report: dict) -> None:
    for side in ("diameter", "grpc"):
        figures = report[side]
        assert figures["errors"] == {} and figures["unended"] == [] and figures["calls"] > 0
        assert figures["codes"] == {f"{kind}:2001": figures["calls"] for kind in ("start", "update", "end")}
        assert figures["pairs"] == 3 * figures["calls"]
        assert set(figures["latency_ms_by_kind"]) == {"start", "update", "end"}
        assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"] <= figures["latency_ms"]["max"]
    calls = report["diameter"]["calls"] + report["grpc"]["calls"]
    cost = 50_000 + 2_000 * 50  # a UK mobile: 0.05 to connect, then 0.12/min per second, for 30 + 20 s
    assert report["money"] == {"status": "exact", "calls": calls, "expected_micros": calls * cost,
                               "charged_micros": calls * cost, "violations": 0}  # fmt: skip


async def test_the_diameter_phase_against_an_occ_in_this_process(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    settings = {"diameter_port": port, "diameter_peers": f"{diameter_phase.CLIENT_HOST}=127.0.0.1"}
    async with serving(redis_url, tmp_path, **settings) as client:
        subscribers = ["99000000001", "99000000002"]
        for subscriber in subscribers:
            await client.account(subscriber, balance=100_000_000)
        load = CallLoad(seconds=1.0, concurrency=3, subscribers=subscribers, called=diameter_phase.CALLED,
                        max_calls=30, tag="t")  # fmt: skip
        report = await asyncio.to_thread(diameter_phase.run, client.address, port, None, load)
        assert not await client.app.store.open_sessions(subscribers[0])
    check_sides(report)
    assert {"pairs_per_s", "p99"} <= set(report["diameter_over_grpc"])
    assert "## Diameter gateway vs gRPC" in "\n".join(diameter_phase.markdown(report))


@pytest.mark.slow
def test_occ_bench_diameter_phase_beside_grpc(tmp_path: Path) -> None:
    results = tmp_path / "results"
    command = [str(OCC), "bench", "--phases", "diameter,correctness", "--seconds", "1", "--accounts", "4",
               "--diameter-concurrency", "4", "--results-dir", str(results)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((results / "online.json").read_text())["diameter"]

    check_sides(report)
    assert report["diameter"]["server_cpu_us_per_pair"] > 0 and report["grpc"]["server_cpu_us_per_pair"] > 0
    assert set(report["diameter_over_grpc"]) == {"pairs_per_s", "p99", "server_cpu_per_pair"}
    summary = (results / "summary.md").read_text()
    assert "## Diameter gateway vs gRPC (same calls, same run)" in summary
    assert "| correctness violations = 0 | 0 | PASS |" in summary


@pytest.mark.parametrize(("charged", "status", "violations"), [(300, "exact", 0), (400, "mismatch", 1)])
def test_the_money_check_counts_a_call_charged_twice(charged: int, status: str, violations: int) -> None:
    diameter = {"calls": 2, "unended": [], "call_costs_micros": {}}
    grpc_side = {"calls": 1, "unended": [], "call_costs_micros": {100: 1}}
    checked = money_check(diameter, grpc_side, charged)
    assert (checked["status"], checked["violations"], checked["expected_micros"]) == (status, violations, 300)

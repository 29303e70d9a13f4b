"""The ceilings: Redis's own limit for session.lua (redis-benchmark) and the h2load peak against the echo server."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from benchmarks.online import h2load, redis_ceiling
from benchmarks.online.machine import free_port
from occ.store.process import RedisProcess
from occ.v1 import charging_pb2 as pb

ECHO_SERVER = Path(__file__).resolve().parents[2] / "benchmarks" / "online" / "echo_server.py"


def test_the_lua_prelude_undoes_the_escape(redis_server: RedisProcess) -> None:
    payload = bytes(range(256)) + b"\x00\x01\x01\x00\x01\x02\x02"
    escaped = redis_ceiling.escape(payload)
    assert b"\x00" not in escaped and redis_ceiling.escape(b"abc") == b"abc"
    script = redis_ceiling.PRELUDE + "return ARGV[1]"
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.eval(script, 0, escaped) == payload


def test_redis_benchmark_runs_session_lua_for_real() -> None:
    result = redis_ceiling.measure(requests=400, clients=4, batches=(1, 4))
    if shutil.which("redis-benchmark") is None:
        assert result == {"status": "skipped", "reason": "redis-benchmark not installed"}
        return
    assert result["status"] == "measured"
    for run in result["runs"]:
        assert run["starts_per_s"] > 0
        # Every start opened a session of its own: no replays of a stored answer (a random id can repeat rarely).
        assert run["calls"] * run["batch"] - 2 <= run["sessions_opened"] <= run["calls"] * run["batch"]


@pytest.fixture
def echo_target() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ECHO_SERVER), "--port", str(port)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    try:
        assert process.stdout.readline().startswith(b"READY")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


def test_h2load_peak_against_the_echo_server(echo_target: str) -> None:
    request = h2load.authorize_request("bench-00000", "+442079460000")
    frame = h2load.grpc_frame(request.SerializeToString())
    assert frame[0] == 0 and int.from_bytes(frame[1:5], "big") == len(frame) - 5
    assert pb.AuthorizeRequest.FromString(frame[5:]) == request
    started = time.monotonic()
    result = h2load.measure(echo_target, request, seconds=1, clients=1, streams=8, warmup_s=0.2)
    if not h2load.installed():
        assert result == {"status": "skipped", "reason": "h2load not installed: peak mode skipped"}
        return
    assert result["grpc_check"] == "OK SUCCESS" and result["status"] == "measured"
    assert result["requests_per_s"] > 0 and result["succeeded"] == result["done"] == result["http_2xx"]
    assert time.monotonic() - started < 20

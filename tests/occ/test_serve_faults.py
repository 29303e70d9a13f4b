"""``occ serve`` as a real process under faults: its embedded redis-server killed with SIGKILL is started again with
its AOF (and health comes back); the server itself killed with SIGKILL takes its children with it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis import Redis
from served import Served, clean_environment

from occ.store.embedded import running_url
from occ.store.keys import shard_keys
from occ.store.process import free_port
from occ.v1 import charging_pb2 as pb
from occ.v1 import charging_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
OCC = str(Path(sys.executable).with_name("occ"))
SERVING = health_pb2.HealthCheckResponse.SERVING
DEMO_CREDIT_MICROS = 10_000_000


@pytest.fixture
def occ_serve(tmp_path: Path) -> Iterator[callable]:
    started: list[Served] = []

    def start(*flags: str, settle: bool = False) -> Served:
        port = free_port()
        env = clean_environment()
        env["OCC_SETTLE"] = str(settle).lower()
        env["OCC_HEALTH_INTERVAL_S"] = "0.2"
        args = [OCC, "serve", "--port", str(port), "--metrics-port", "0", "--data-dir", str(tmp_path / "data"),
                "--tariff", str(REPO / "examples" / "tariff"), "--demo", *flags]  # fmt: skip
        served = Served(args, tmp_path / f"serve-{len(started)}.log", env, port=port)
        started.append(served)
        served.listening()
        return served

    yield start
    for served in started:
        served.kill()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def gone_within(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def draining(redis_url: str) -> bool:
    """True once a settlement worker waits for entries (blocked in XREADGROUP)."""
    with contextlib.closing(Redis.from_url(redis_url, decode_responses=True)) as client:
        return any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in client.client_list())


def health(port: int) -> int | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status
        except grpc.RpcError:
            return None


def demo_balance(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return (
            charging_pb2_grpc.ChargingStub(channel)
            .GetBalance(pb.BalanceRequest(subscriber="demo"), timeout=5)
            .balance_micros
        )


def test_a_killed_embedded_redis_is_started_again_with_its_aof(occ_serve):
    served = occ_serve()
    (first,) = served.messages("embedded redis-server started")
    assert demo_balance(served.port) == DEMO_CREDIT_MICROS
    os.kill(first["pid"], signal.SIGKILL)
    served.wait_for("a second redis-server", lambda: len(served.messages("embedded redis-server started")) == 2)
    second = served.messages("embedded redis-server started")[1]
    assert second["pid"] != first["pid"] and second["url"] == first["url"]  # the same port: clients reconnect
    (restarted,) = served.messages("embedded redis-server died; starting it again with its AOF")
    assert restarted["status"] == -signal.SIGKILL
    served.wait_for("health SERVING", lambda: health(served.port) == SERVING)
    assert demo_balance(served.port) == DEMO_CREDIT_MICROS  # the demo account came back from the AOF
    assert served.stop() == 0
    assert gone_within(second["pid"], 5)


def test_a_killed_server_takes_its_settlement_worker_and_its_redis_with_it(occ_serve, tmp_path):
    served = occ_serve(settle=True)
    (worker,) = served.messages("settlement worker started")
    (redis,) = served.messages("embedded redis-server started")
    url = running_url(tmp_path / "data")  # the logged URL has no password; the data dir has it
    served.wait_for("the worker draining", lambda: draining(url))
    assert alive(worker["pid"]) and alive(redis["pid"])
    name = f"{socket.gethostname()}-serve-{served.port}"  # the same on every run: a restart reads what it held
    with contextlib.closing(Redis.from_url(url, decode_responses=True)) as client:
        assert [c["name"] for c in client.xinfo_consumers(shard_keys(0)[0], "settlement")] == [name]
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(10)
    assert gone_within(worker["pid"], 10), "the settlement worker outlived its server"
    assert gone_within(redis["pid"], 10)
    again = occ_serve(settle=True)  # a restarted server starts one worker, not a second one beside an orphan
    (second,) = again.messages("settlement worker started")
    assert second["pid"] != worker["pid"]
    assert again.stop() == 0 and gone_within(second["pid"], 5)

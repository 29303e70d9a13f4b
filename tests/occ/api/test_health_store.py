"""Health follows the store: NOT_SERVING while Redis cannot be reached (calls fail UNAVAILABLE, retriable), SERVING
again once it is back. A real server, a real redis-server killed with SIGKILL and started again on its port."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from online_app import EXAMPLE_TARIFF, session, voice

from occ.api.client import aio_channel
from occ.api.server import GrpcServer
from occ.api.tokens import TOKENS_FILE, TokenFile
from occ.app import App
from occ.core.errors import rule_of
from occ.settings import Settings
from occ.store.process import free_port, start_redis_server
from occ.v1 import admin_pb2 as admin
from occ.v1 import admin_pb2_grpc, charging_pb2_grpc
from occ.v1 import charging_pb2 as pb

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


async def health_becomes(channel: grpc.aio.Channel, status: int, timeout_s: float = 10.0) -> float:
    """Seconds until every service's health is ``status``; fails after ``timeout_s``."""
    stub = health_pb2_grpc.HealthStub(channel)
    started = time.monotonic()
    while True:
        answers = [
            (await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)).status
            for name in ("", "occ.v1.Charging", "occ.v1.Admin")
        ]
        if set(answers) == {status}:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"health stayed {answers}"
        await asyncio.sleep(0.05)


def test_a_redis_outage_is_in_the_error_table_as_retriable_unavailable():
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

    for error in (ConnectionError("refused"), TimeoutError("slow"), BusyLoadingError("loading")):
        rule = rule_of(error)
        assert rule is not None and (rule.grpc_status, rule.retriable) == ("UNAVAILABLE", True)


async def test_health_turns_not_serving_while_redis_is_gone_and_calls_are_unavailable(tmp_path: Path):
    directory = tmp_path / "redis"
    redis = start_redis_server(directory, appendonly=True)
    settings = Settings.load(None, {}, port=free_port(), metrics_port=0, redis_url=redis.url, data_dir=tmp_path,
                             tariff_dir=EXAMPLE_TARIFF, health_interval_s=0.2, grace_s=0.5,
                             admin_listen="", admin_on_charging_port=True)  # fmt: skip
    server = GrpcServer(settings, app_factory=App)
    await server.start()
    try:
        token = TokenFile(tmp_path / TOKENS_FILE).create("tests", "admin")
        async with aio_channel(f"127.0.0.1:{settings.port}", token=token) as channel:
            charging, admin_stub = charging_pb2_grpc.ChargingStub(channel), admin_pb2_grpc.AdminStub(channel)
            await admin_stub.CreateAccount(admin.Account(id="h", currency="EUR", tariff_plan="retail"))
            top_up = admin.TransactionRequest(account_id="h", type=admin.TOP_UP, amount_micros=10**7,
                                              idempotency_key="h-1", ledger_code=400000009)  # fmt: skip
            await admin_stub.Transact(top_up)
            await health_becomes(channel, SERVING)

            redis.process.kill()  # SIGKILL: no shutdown, no goodbye
            redis.process.wait()
            assert await health_becomes(channel, NOT_SERVING) < 3.0
            for call in (charging.StartSession(session("h-1", 0, "h", voice(60))),
                         charging.GetBalance(pb.BalanceRequest(subscriber="h")),
                         admin_stub.GetAccount(admin.GetAccountRequest(id="h"))):  # fmt: skip
                started = time.monotonic()
                try:
                    await call
                    raise AssertionError("a call succeeded without Redis")
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
                    assert error.details() == "the charging store is unavailable; retry later"
                assert time.monotonic() - started < 5.0  # fails fast enough for a switch to apply its failure handling

            redis = start_redis_server(directory, port=redis.port, appendonly=True)  # the same AOF, the same port
            assert await health_becomes(channel, SERVING) < 3.0
            balance = await charging.GetBalance(pb.BalanceRequest(subscriber="h"))
            assert balance.balance_micros == 10**7  # the AOF kept the top-up
            assert (await charging.StartSession(session("h-1", 0, "h", voice(60)))).result_code == pb.SUCCESS
    finally:
        await server.stop()
        redis.stop()

"""A real online core in the test process: an App and its gRPC server over a real redis-server, and request helpers.

Used by the tests of ``occ`` (through ``tests/occ/conftest.py``) and by settlement tests that need real events.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc

from occ.api.auth import AdminAuthInterceptor
from occ.api.client import aio_channel
from occ.api.interceptors import server_interceptors
from occ.api.server import server_options
from occ.api.tokens import TOKENS_FILE, TokenFile
from occ.app import App
from occ.settings import Settings
from occ.v1 import admin_pb2 as admin
from occ.v1 import admin_pb2_grpc, charging_pb2_grpc
from occ.v1 import charging_pb2 as pb

EXAMPLE_TARIFF = str(Path(__file__).resolve().parents[1] / "examples" / "tariff")
LONDON = "+442079460000"
MONDAY_PEAK = int(datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp())  # STANDARD rate: 0.20 + 0.10/min, then 0.05/min


class Client:
    """Stubs for one running server, its App (for the sweeper, Redis and settings) and its address (``host:port``,
    for the ``occ`` command line)."""

    def __init__(self, app: App, channel: grpc.aio.Channel, address: str = "") -> None:
        self.app, self.channel, self.address = app, channel, address
        self.token = ""  # the admin token the channel sends
        self.charging = charging_pb2_grpc.ChargingStub(channel)
        self.admin = admin_pb2_grpc.AdminStub(channel)

    async def account(self, account_id: str, *, balance: int, credit_limit: int = 0, plan: str = "retail") -> None:
        await self.admin.CreateAccount(
            admin.Account(id=account_id, currency="EUR", tariff_plan=plan, credit_limit_micros=credit_limit)
        )
        if balance:
            await self.admin.Transact(
                admin.TransactionRequest(
                    account_id=account_id,
                    type=admin.TOP_UP,
                    amount_micros=balance,
                    idempotency_key=f"opening-{account_id}",
                    ledger_code=400000009,
                )
            )

    async def balance(self, account_id: str) -> pb.BalanceAnswer:
        return await self.charging.GetBalance(pb.BalanceRequest(subscriber=account_id))

    async def events(self, account_id: str, *, settings: bool = False) -> list[dict[str, str]]:
        """The account's entries on its shard's event stream, oldest first, decoded: its balance changes and session
        closes, and with ``settings`` also its ``account`` entries (created, updated)."""
        stream = self.app.store.keys(account_id).events
        entries = await self.app.redis.xrange(stream)
        decoded = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
        return [e for e in decoded if e["account"] == account_id and (settings or e["type"] != "account")]


def session(
    session_id: str, number: int, subscriber: str, *quotas: pb.QuotaRequest, at: int = MONDAY_PEAK, called: str = LONDON
) -> pb.SessionRequest:
    request = pb.SessionRequest(
        session_id=session_id, request_number=number, subscriber=subscriber, called_party=called, quotas=list(quotas)
    )
    request.event_time.seconds = at
    return request


def voice(requested: int = 0, used: int = 0, rating_group: int = 100) -> pb.QuotaRequest:
    return pb.QuotaRequest(rating_group=rating_group, service=pb.VOICE, requested_units=requested, used_units=used)


@contextlib.asynccontextmanager
async def serving(redis_url: str, data_dir: Path, *, cluster: bool = False, **settings) -> AsyncIterator[Client]:
    """The App's Charging and Admin on one port, Admin behind its authentication; the client's channel sends a token
    of role ``admin`` (``Client.token``) on every unary call."""
    options = {"validity_time_s": 60, "tariff_dir": EXAMPLE_TARIFF, "sweep_interval_s": 3600.0, **settings}
    app = App(Settings.load(None, {}, redis_url=redis_url, redis_cluster=cluster, data_dir=data_dir, **options))
    await app.start()
    token = TokenFile(data_dir / TOKENS_FILE).create(f"tests-{uuid.uuid4().hex[:8]}", "admin")
    guard = AdminAuthInterceptor.from_settings(app.settings)
    server = grpc.aio.server(options=server_options(app.settings), interceptors=[*server_interceptors(), guard])
    app.add_to_server(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = aio_channel(f"127.0.0.1:{port}", token=token)
    try:
        client = Client(app, channel, f"127.0.0.1:{port}")
        client.token = token
        yield client
    finally:
        await channel.close()
        await server.stop(0)
        await app.close()
        guard.close()


async def settle_everything(client: Client, redis_url: str, store) -> None:
    """Drain every event the online core has written into ``store``; fail if anything is left or dead-lettered."""
    from settlement.drain import Drain, DrainOptions

    options = DrainOptions(claim_idle_s=0)
    async with Drain(redis_url, store, shards=client.app.settings.shards, options=options) as drain:
        left = await drain.drain_once()
    assert (left.lag, left.pending, drain.dead_letters) == (0, 0, 0)

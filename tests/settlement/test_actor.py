"""Who caused a money movement travels with it: the Admin caller's identity on the stream entry (``actor``), then on
the ledger row and the xDR settlement books from it (SQLite and PostgreSQL). Entries without one — the switch's
usage, and entries written before actors existed — settle as before, with no actor."""

from __future__ import annotations

from books import check, settle
from online_app import serving, session, voice
from sqlalchemy import select

from occ.api.client import aio_channel
from occ.api.tokens import TOKENS_FILE, TokenFile
from occ.v1 import admin_pb2 as admin
from occ.v1 import admin_pb2_grpc
from occ.v1 import charging_pb2 as pb
from settlement.reconcile import Outcome
from settlement.store.schema import ledger, xdrs


async def test_the_callers_identity_lands_on_the_event_the_ledger_row_and_the_xdr(redis_url, store, tmp_path):
    async with serving(redis_url, tmp_path) as client:
        tokens = TokenFile(tmp_path / TOKENS_FILE)
        async with (
            aio_channel(client.address, token=tokens.create("alice", "finance")) as finance,
            aio_channel(client.address, token=tokens.create("olga", "operator")) as operations,
        ):
            alice, olga = admin_pb2_grpc.AdminStub(finance), admin_pb2_grpc.AdminStub(operations)
            await olga.CreateAccount(admin.Account(id="acme", currency="EUR", tariff_plan="retail"))
            await alice.Transact(admin.TransactionRequest(account_id="acme", type=admin.TOP_UP,
                                                          amount_micros=10_000_000, idempotency_key="t-1",
                                                          ledger_code=400000009))  # fmt: skip
            # a call the switch starts, an operator aborts, and the switch's terminate still charges
            opened = await client.charging.StartSession(session("call-1", 0, "acme", voice(requested=60)))
            assert opened.result_code == pb.SUCCESS
            aborted = await olga.AbortSession(admin.AbortSessionRequest(account_id="acme", session_id="call-1"))
            assert aborted.aborted
            await client.charging.EndSession(session("call-1", 1, "acme", voice(used=30)))
        # a money movement written the way entries were before actors existed: no actor field at all
        await client.app.store.transact("acme", key="old-1", kind="payment", amount_micros=1_000_000,
                                        ledger_code=400000010, description="before actors")  # fmt: skip

        events = await client.events("acme")
        assert [(e["type"], e.get("actor")) for e in events] == [
            ("topup", "token:alice"),
            ("session_charge", None),
            ("session_close", "token:olga"),
            ("payment", None),
        ]

        await settle(client, store)
        assert (await check(client, store)).outcome == Outcome.CLEAN
        with store.connect() as sql:
            booked = sql.execute(select(ledger.c.kind, ledger.c.actor).order_by(ledger.c.time_ms, ledger.c.id)).all()
            items = sql.execute(select(xdrs.c.kind, xdrs.c.cause, xdrs.c.actor).order_by(xdrs.c.end_ms)).all()
        assert sorted(booked, key=str) == sorted(
            [("topup", "token:alice"), ("session_charge", None), ("payment", None)], key=str
        )
        assert sorted(items, key=str) == sorted(
            [("topup", "", "token:alice"), ("session", "ABORTED", "token:olga"), ("payment", "", None)], key=str
        )

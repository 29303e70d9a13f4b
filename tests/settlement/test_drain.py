"""The drain end to end: real online core → real Redis streams → `Drain` → real SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

from online_app import serving, session, voice
from sqlalchemy import func, select

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb
from settlement.drain import Drain, DrainOptions
from settlement.store.schema import accounts, ledger, xdrs


async def traffic(client) -> None:
    """Two accounts: top-ups, a voice call with an update, an SMS, a refund, a payment, an adjustment."""
    await client.account("alice", balance=10_000_000)
    await client.account("bob", balance=5_000_000)
    c = client.charging
    await c.StartSession(session("call-1", 0, "alice", voice(requested=60)))
    await c.UpdateSession(session("call-1", 1, "alice", voice(requested=60, used=60)))
    await c.EndSession(session("call-1", 2, "alice", voice(used=1)))  # 61 s in all
    for sid, action in (("sms-1", pb.DIRECT_DEBIT), ("sms-2", pb.REFUND_ACCOUNT)):
        event = dict(session_id=sid, subscriber="bob", service=pb.MESSAGE, units=1, called_party="+447900000000")
        await c.ChargeEvent(pb.EventRequest(action=action, **event))
    for kind, amount, key in ((admin.PAYMENT, 2_500_000, "pay-1"), (admin.ADJUSTMENT, -1_000, "adj-1")):
        await client.admin.Transact(
            admin.TransactionRequest(
                account_id="alice", type=kind, amount_micros=amount, idempotency_key=key, ledger_code=400000010
            )
        )


async def test_every_entry_is_booked_once_and_balances_replay(redis_url, tmp_path, store):
    async with serving(redis_url, tmp_path) as client:
        await traffic(client)
        redis = client.app.redis
        drain = Drain(redis_url, store, shards=client.app.settings.shards, options=DrainOptions(claim_idle_s=0))
        await drain.setup()
        left = await drain.drain_once()
        assert (left.lag, left.pending) == (0, 0)
        assert drain.dead_letters == 0

        with store.connect() as sql:
            for account in ("alice", "bob"):
                live = (await client.balance(account)).balance_micros
                booked = sql.execute(select(func.sum(ledger.c.amount)).where(ledger.c.account == account)).scalar()
                assert booked == live
            all_xdrs = sql.execute(select(xdrs)).all()
            rows = {r.kind: r for r in all_xdrs}
            n_ledger = sql.execute(select(func.count()).select_from(ledger)).scalar()
            assert sql.execute(select(accounts.c.account).order_by(accounts.c.account)).scalars().all() == [
                "alice",
                "bob",
            ]
        # 61 s at the example tariff's STANDARD rate: 0.20 connect + 0.10/min for the first minute, 0.05/min after
        call = rows["session"]
        assert (call.units, call.cost, call.service, call.cause) == (61, 300_834, "voice", "TERMINATE")
        assert call.status == "BILLABLE" and call.ledger_code and call.plan == "retail"
        assert rows["event_charge"].cost > 0 and rows["event_refund"].cost == -rows["event_charge"].cost
        assert rows["payment"].cost == -2_500_000 and rows["payment"].record_type == "PAYMENT"
        assert rows["adjustment"].cost == 1_000 and rows["topup"].record_type == "PAYMENT"

        # Re-deliver everything (as after a crash between commit and acknowledgement): nothing changes.
        for shard in range(client.app.settings.shards):
            await redis.xgroup_setid(drain.streams[shard], "settlement", "0")
        await drain.drain_once()
        with store.connect() as sql:
            assert sql.execute(select(func.count()).select_from(ledger)).scalar() == n_ledger
            assert sql.execute(select(func.count()).select_from(xdrs)).scalar() == len(all_xdrs) == 7
        await drain.close()

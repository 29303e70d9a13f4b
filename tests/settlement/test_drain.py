"""The drain end to end: real online core → real Redis streams → `Drain` → real SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

from online_app import MONDAY_PEAK, serving, session, voice
from sqlalchemy import func, select

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb
from settlement.drain import Drain, DrainOptions
from settlement.entries import book, period_of
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
        # It started Monday 2026-01-05 09:00 (the switch's time) and closed now: it belongs to January 2026.
        assert (call.start_ms, call.period) == (MONDAY_PEAK * 1000, "2026-01") and call.end_ms > call.start_ms
        assert rows["payment"].period == period_of(rows["payment"].start_ms)  # money movements: their own time
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


def test_a_usage_xdr_belongs_to_the_month_its_call_started_and_old_entries_fall_back_to_their_time():
    # A 150 s call of Monday 2026-01-05 09:00 closed (settled) 2026-02-02 02:40 UTC.
    close = {
        "type": "session_close", "id": "c-1:close:100", "account": "alice", "amount": "0", "balance": "9625000",
        "currency": "EUR", "time_ms": "1770000000000", "session_id": "c-1", "rg": "100", "service": "voice",
        "units": "150", "cost": "375000", "over": "0", "ledger": "400000001", "cause": "TERMINATE",
        "start_s": str(MONDAY_PEAK),
    }  # fmt: skip
    ledger_rows, (xdr,) = book("s001:1-0", close, 0)
    assert ledger_rows == ()  # a close changes no balance
    assert (xdr.start_ms, xdr.end_ms, xdr.period) == (MONDAY_PEAK * 1000, 1_770_000_000_000, "2026-01")
    # An entry written before start_s was on every usage entry: its own time decides.
    del close["start_s"]
    _, (old,) = book("s001:2-0", close, 0)
    assert (old.start_ms, old.period) == (1_770_000_000_000, "2026-02")
    topup = {"type": "topup", "id": "t", "account": "alice", "amount": "10000000", "balance": "10000000",
             "currency": "EUR", "time_ms": "1770000000000", "ledger": "400000009", "idempotency_key": "k"}  # fmt: skip
    (row,), (paid,) = book("s001:3-0", topup, 0)
    assert (row.period, paid.period, paid.start_ms) == ("2026-02", "2026-02", 1_770_000_000_000)

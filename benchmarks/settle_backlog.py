"""A synthetic backlog for settlement: contract-valid stream entries (docs/events.md) and matching Redis accounts.

Used by ``bench_settle.py`` and by the settlement reliability tests. Each account gets a top-up, then calls (a
``session_charge`` followed by its ``session_close``, the usual shape of a short call) and an SMS now and then; the
account hashes end with the balance their entries add up to, so ``occ reconcile`` holds once everything is settled.
Entries go onto each account's shard stream in order, with pipelined XADDs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from occ.store.keys import AccountKeys

TARIFF = "ab" * 32
CALL_START_S = 1_767_603_600  # Monday 5 January 2026, 09:00 UTC


@dataclass
class Backlog:
    """What was written. Attributes: entries, xdrs, ledger_rows: counts; balances: account → balance (micros)."""

    entries: int
    xdrs: int
    ledger_rows: int
    balances: dict[str, int]


def _entry(kind: str, account: str, amount: int, balance: int, time_ms: int, **fields: str) -> dict[str, str]:
    common = {"type": kind, "account": account, "amount": str(amount), "balance": str(balance), "currency": "EUR"}
    return {**common, "time_ms": str(time_ms), **fields}


def _usage(session_id: str, service: str, units: int, cost: int) -> dict[str, str]:
    return {
        "session_id": session_id,
        "rg": "100",
        "service": service,
        "units": str(units),
        "cost": str(cost),
        "group": "UK_FIXED",
        "ledger": "400000001",
        "rate": "STANDARD",
        "tariff": TARIFF,
        "plan": "retail",
        "calling": "+441632960000",
        "called": "+442079460000",
        "start_s": str(CALL_START_S),
    }


async def fill_backlog(
    client, *, shards: int, accounts: int, calls: int, sms_every: int = 10, close_only: bool = False, seed: int = 1
) -> Backlog:
    """Write ``calls`` calls (and an SMS every ``sms_every`` calls) over ``accounts`` accounts.

    ``close_only`` writes each call as its ``session_close`` alone (amount 0) and no SMS: every entry but the
    top-ups is then one xDR and no ledger row.
    """
    rnd = random.Random(seed)
    names = [f"acct{i:06d}" for i in range(accounts)]
    balances = dict.fromkeys(names, 0)
    counts = {"entries": 0, "xdrs": 0, "ledger_rows": 0}
    pipe = client.pipeline(transaction=False)
    time_ms = CALL_START_S * 1000

    async def add(account: str, fields: dict[str, str], *, xdr: bool, ledger: bool) -> None:
        pipe.xadd(AccountKeys(account, shards).events, fields)
        counts["entries"] += 1
        counts["xdrs"] += xdr
        counts["ledger_rows"] += ledger
        if len(pipe) >= 5_000:
            await pipe.execute()

    opening = 100_000_000
    for name in names:
        balances[name] = opening
        topup = _entry(
            "topup",
            name,
            opening,
            opening,
            time_ms,
            id=f"t-{name}",
            ledger="400000009",
            description="opening",
            idempotency_key=f"open-{name}",
        )
        await add(name, topup, xdr=True, ledger=True)
    for call in range(calls):
        name = names[rnd.randrange(accounts)]
        time_ms += rnd.randrange(1, 50)
        seconds = rnd.randrange(1, 600)
        cost = 200_000 + seconds * 1_667
        sid = f"call-{call}"
        if not close_only:
            balances[name] -= cost
            charge = _entry(
                "session_charge",
                name,
                -cost,
                balances[name],
                time_ms,
                id=f"{sid}:1:100",
                request_number="1",
                units_total=str(seconds),
                **_usage(sid, "voice", seconds, cost),
            )
            await add(name, charge, xdr=False, ledger=True)
        close = _entry(
            "session_close",
            name,
            0,
            balances[name],
            time_ms,
            id=f"{sid}:close:100",
            over="0",
            cause="TERMINATE",
            started_ms=str(CALL_START_S * 1000),
            **_usage(sid, "voice", seconds, cost),
        )
        await add(name, close, xdr=True, ledger=False)
        if sms_every and call % sms_every == 0 and not close_only:
            balances[name] -= 50_000
            sms = _entry(
                "event_charge",
                name,
                -50_000,
                balances[name],
                time_ms,
                id=f"sms-{call}:0",
                request_number="0",
                **_usage(f"sms-{call}", "message", 1, 50_000),
            )
            await add(name, sms, xdr=True, ledger=True)
    for name, balance in balances.items():
        account = {
            "balance": balance,
            "reserved": 0,
            "credit_limit": 0,
            "currency": "EUR",
            "status": "ACTIVE",
            "plan": "retail",
        }
        pipe.hset(AccountKeys(name, shards).account, mapping=account)
        if len(pipe) >= 5_000:
            await pipe.execute()
    await pipe.execute()
    return Backlog(counts["entries"], counts["xdrs"], counts["ledger_rows"], balances)

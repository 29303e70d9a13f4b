"""No overspend, ever: concurrent reservations on one account never grant more than its credit covers."""

from __future__ import annotations

import asyncio

from online_app import session, voice

GRANT = 300_000  # cost(60) at PEAK on STANDARD, and also the cost of any smaller grant (one 60 s step)


async def test_concurrent_starts_grant_exactly_what_credit_covers(backend_charging):
    client = backend_charging
    grants = 50
    # Balance plus credit limit covers 50 grants and leaves 299999: not enough for a 51st, even a 1-second one.
    await client.account("ivy", balance=10 * GRANT, credit_limit=(grants - 10) * GRANT + GRANT - 1)
    answers = await asyncio.gather(
        *(client.charging.StartSession(session(f"ivy-{n}", 0, "ivy", voice(requested=60))) for n in range(2000))
    )
    codes = [answer.result_code for answer in answers]
    assert codes.count(2001) == grants and codes.count(4012) == 2000 - grants
    granted = sum(answer.quotas[0].granted_units for answer in answers if answer.result_code == 2001)
    assert granted == grants * 60
    balance = await client.balance("ivy")
    assert balance.reserved_micros == grants * GRANT
    assert balance.available_micros == GRANT - 1
    assert balance.balance_micros == 10 * GRANT  # nothing used yet, nothing charged

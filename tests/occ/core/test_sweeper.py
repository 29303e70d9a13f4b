"""Lost terminates: a session with no request for 2 × validity time is closed by the sweeper, once."""

from __future__ import annotations

import asyncio
import time

from online_app import session, voice

from occ.core.sweeper import Sweeper
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

TEN_EUR = 10_000_000


async def test_silent_session_is_closed_with_cause_timeout(backend_charging):
    client = backend_charging
    await client.account("jo", balance=TEN_EUR)
    await client.charging.StartSession(session("j1", 0, "jo", voice(requested=60)))
    await client.charging.UpdateSession(session("j1", 1, "jo", voice(requested=60, used=61)))
    updated_ms = int(time.time() * 1000)
    sweeper = client.app.sweeper
    assert await sweeper.sweep_once(updated_ms + 119_000) == 0  # not yet 2 × 60 s
    assert await sweeper.sweep_once(updated_ms + 121_000) == 1
    balance = await client.balance("jo")
    assert (balance.balance_micros, balance.reserved_micros) == (TEN_EUR - 300_834, 0)  # usage stays committed
    [close] = [e for e in await client.events("jo") if e["type"] == "session_close"]
    assert (close["cause"], close["cost"], close["units"]) == ("TIMEOUT", "300834", "61")
    late = await client.charging.UpdateSession(session("j1", 2, "jo", voice(requested=60, used=5)))
    assert late.result_code == pb.UNKNOWN_SESSION_ID


async def test_several_sweepers_close_a_session_once(backend_charging):
    client = backend_charging
    await client.account("kim", balance=TEN_EUR)
    for n in range(20):
        await client.charging.StartSession(session(f"k{n}", 0, "kim", voice(requested=60)))
    later = int(time.time() * 1000) + 200_000
    others = [Sweeper(client.app.store, interval_s=3600) for _ in range(3)]
    closed = await asyncio.gather(client.app.sweeper.sweep_once(later), *(s.sweep_once(later) for s in others))
    assert sum(closed) == 20
    closes = [e for e in await client.events("kim") if e["type"] == "session_close"]
    assert len(closes) == 20 and {e["cause"] for e in closes} == {"TIMEOUT"}
    assert (await client.balance("kim")).reserved_micros == 0


async def test_an_updated_session_is_not_swept(charging):
    await charging.account("lee", balance=TEN_EUR)
    await charging.charging.StartSession(session("l1", 0, "lee", voice(requested=60)))
    started_ms = int(time.time() * 1000)
    await charging.charging.UpdateSession(session("l1", 1, "lee", voice(requested=60, used=30)))
    # A sweeper that read the old deadline must not close it: session.lua re-checks inside the atomic close.
    assert await charging.app.sweeper.sweep_once(started_ms + 119_500) == 0
    assert (await charging.balance("lee")).reserved_micros > 0


async def test_the_sweeper_counts_open_sessions_for_the_gauge(charging):
    counts: list[int] = []
    sweeper = Sweeper(charging.app.store, interval_s=3600, on_count=counts.append)
    await charging.account("mo", balance=TEN_EUR)
    for n in range(3):
        await charging.charging.StartSession(session(f"m{n}", 0, "mo", voice(requested=60)))
    await charging.charging.EndSession(session("m0", 1, "mo", voice(used=10)))
    await sweeper.sweep_once()
    assert counts == [2]


async def test_an_aborted_session_whose_terminate_never_comes_is_closed_as_aborted(charging):
    await charging.account("ab2", balance=TEN_EUR)
    await charging.charging.StartSession(session("x1", 0, "ab2", voice(requested=60)))
    await charging.charging.UpdateSession(session("x1", 1, "ab2", voice(requested=60, used=61)))
    aborted_ms = int(time.time() * 1000)
    await charging.admin.AbortSession(admin.AbortSessionRequest(account_id="ab2", session_id="x1"))
    assert (await charging.balance("ab2")).reserved_micros == 0  # released at the abort
    closes: list[tuple[str, int]] = []
    sweeper = Sweeper(charging.app.store, interval_s=3600, on_close=lambda cause, n: closes.append((cause, n)))
    assert await sweeper.sweep_once(aborted_ms + 121_000) == 1
    assert closes == [("ABORTED", 1)]  # counted under its own cause, not TIMEOUT
    [close] = [e for e in await charging.events("ab2") if e["type"] == "session_close"]
    assert (close["cause"], close["cost"]) == ("ABORTED", "300834")

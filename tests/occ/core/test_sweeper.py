"""Lost terminates: a session with no request for 2 × validity time is closed by the sweeper, once."""

from __future__ import annotations

import asyncio
import time

from online_app import serving, session, voice

from occ.core.sweeper import ROTATION_TICKS, Sweeper
from occ.store import keys
from occ.store.lease import Lease
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


async def expired_sessions_on_every_shard(client, name: str) -> int:
    """Sessions on many shards (one per account), all past their deadline 200 s from now; returns that time."""
    await asyncio.gather(*(client.account(f"{name}{n}", balance=TEN_EUR) for n in range(40)))
    for n in range(40):
        await client.charging.StartSession(session(f"{name}-s{n}", 0, f"{name}{n}", voice(requested=60)))
    return int(time.time() * 1000) + 200_000


async def test_ticks_rotate_over_the_shards_and_close_every_expired_session_within_one_rotation(backend_charging):
    client = backend_charging
    later = await expired_sessions_on_every_shard(client, "rot")
    sweeper = Sweeper(client.app.store, interval_s=3600)
    first = await sweeper.tick(later)
    assert 0 < first < 40  # one tick looks at part of the shards only
    closed = [first] + [await sweeper.tick(later) for _ in range(ROTATION_TICKS - 1)]
    assert sum(closed) == 40  # one rotation looks at every shard once
    assert await sweeper.sweep_once(later) == 0


async def test_only_the_lease_holder_sweeps_and_another_takes_over_when_it_stops(charging):
    later = await expired_sessions_on_every_shard(charging, "ls")
    store, redis = charging.app.store, charging.app.redis
    counts: dict[str, list[int]] = {"a": [], "b": []}
    a, b = (Sweeper(store, interval_s=3600, lease=Lease(redis, "sweeper-test", ttl_s=60), on_count=counts[name].append)
            for name in "ab")  # fmt: skip
    assert await a.tick(later) > 0
    assert await b.tick(later) == 0 and counts["b"] == []  # not the holder: looked at nothing
    await a.close()  # gives the lease up
    assert sum([await b.tick(later) for _ in range(ROTATION_TICKS)]) > 0
    assert sum([await b.tick(later) for _ in range(ROTATION_TICKS)]) == 0  # one rotation closed them all
    assert counts["b"][-1] == 0  # counted on the second rotation: no session left open
    await b.close()


async def test_a_deadline_whose_session_is_gone_is_dropped(charging):
    stale = keys.shard_keys(5)[1]
    await charging.app.redis.zadd(stale, {"gone-session": 1})
    assert await charging.app.sweeper.sweep_once() == 0
    assert await charging.app.redis.zcard(stale) == 0


async def test_one_worker_of_several_holds_the_sweeper_and_tariff_watch_leases(redis_url, tmp_path):
    async with serving(redis_url, tmp_path / "a") as one, serving(redis_url, tmp_path / "b") as other:
        for app in (one.app, other.app):
            await app.sweeper.tick()
            await app.tariffs.watch()
        assert [one.app.sweeper.lease.held, other.app.sweeper.lease.held].count(True) == 1
        assert [one.app.tariffs.lease.held, other.app.tariffs.lease.held].count(True) == 1

"""A lease in Redis: one holder at a time, kept by renewing, given up on stopping, taken over when its holder dies."""

from __future__ import annotations

import asyncio

from occ.store.client import connect
from occ.store.lease import Lease


async def test_one_holder_at_a_time_and_the_next_takes_over_when_it_gives_up(redis_url):
    client = connect(redis_url)
    try:
        first, second = Lease(client, "job", ttl_s=30), Lease(client, "job", ttl_s=30)
        assert await first.hold() and not await second.hold()
        assert await first.hold()  # renewed by its holder
        await second.release()  # giving up what one does not hold changes nothing
        assert not await second.hold()
        await first.release()
        assert await second.hold() and not await first.hold()
        assert await client.get("occ:lease:job") == second.holder.encode()
    finally:
        await client.aclose()


async def test_a_holder_that_stops_renewing_loses_the_lease_after_its_ttl(redis_url):
    client = connect(redis_url)
    try:
        dead, alive = Lease(client, "job", ttl_s=0.2), Lease(client, "job", ttl_s=0.2)
        assert await dead.hold()
        assert not await alive.hold()
        await asyncio.sleep(0.3)  # the holder "died": no renewal within its ttl
        assert await alive.hold() and not await dead.hold()
    finally:
        await client.aclose()


async def test_leases_of_different_jobs_are_independent(redis_url):
    client = connect(redis_url)
    try:
        assert await Lease(client, "sweeper", ttl_s=30).hold()
        assert await Lease(client, "tariff-watch", ttl_s=30).hold()
    finally:
        await client.aclose()


async def test_giving_up_with_redis_gone_does_not_fail_the_stop(redis_server, redis_url):
    client = connect(redis_url, timeout_s=1.0)
    try:
        lease = Lease(client, "job", ttl_s=30)
        assert await lease.hold()
        redis_server.stop()
        await lease.release()  # left to expire by itself
        assert not lease.held
    finally:
        await client.aclose()

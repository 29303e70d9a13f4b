"""A lease in Redis: the right of one process among all those sharing a Redis (every worker of every host) to run a
background job, such as the sweeper or the tariff watch, so that the job runs once and not once per worker.

The holder renews its lease on every run of its job; a holder that dies stops renewing, and after ``ttl_s`` the
next process to ask takes it over (``lua/lease.lua``). A holder that stops cleanly gives it up at once.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

import redis.asyncio as redis
from redis.exceptions import RedisError

from occ.store import keys
from occ.store.scripts import LUA_DIR

LEASE_SCRIPT = (LUA_DIR / "lease.lua").read_text()
log = logging.getLogger(__name__)


class Lease:
    """One process's claim on the lease of ``job``; :meth:`hold` before each run, :meth:`release` on stopping."""

    def __init__(self, client: redis.Redis, job: str, *, ttl_s: float) -> None:
        self.key = keys.lease(job)
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.held = False
        self._script = client.register_script(LEASE_SCRIPT)  # EVALSHA, loaded again if Redis lost it

    async def hold(self) -> bool:
        """Take the lease if nobody holds it, or keep it for another ``ttl_s``; whether this process holds it."""
        self.held = bool(await self._script(keys=[self.key], args=[self.holder, self.ttl_ms]))
        return self.held

    async def release(self) -> None:
        """Give the lease up (if held), so another process takes the job over at its next run. With Redis out of
        reach it is left to expire (a stopping process must not fail for that)."""
        if self.held:
            self.held = False
            try:
                await self._script(keys=[self.key], args=[self.holder, 0])
            except (RedisError, OSError) as error:
                log.warning(
                    "could not give up a lease; it expires by itself", extra={"lease": self.key, "error": str(error)}
                )

"""gRPC health that follows the store: a worker whose Redis cannot be reached says NOT_SERVING, so a load balancer or
a switch's health check stops sending it calls (which would fail UNAVAILABLE anyway), and SERVING again once it is
back.

::

    watch = StoreWatch([(health, ["", "occ.v1.Charging"]), (admin_health, ["", "occ.v1.Admin"])], app.ping,
                       interval_s=1.0)
    watch.start()          # after the services were set SERVING
    ...
    await watch.close()    # before the graceful shutdown turns everything NOT_SERVING for good
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from occ.core.periodic import Periodic

log = logging.getLogger(__name__)

PING_TIMEOUT_S = 2.0
"""A ping slower than this counts as a failure (a Redis that hangs is as unusable as one that is gone)."""
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class StoreWatch:
    """Pings the store every ``interval_s`` and sets every service of ``targets`` (a health servicer, one per
    listener, and the service names it reports) to match. Owned: ``start()`` and
    ``close()``.

    Attributes:
        serving: what the services were last set to (they start SERVING).
    """

    def __init__(
        self,
        targets: Sequence[tuple[health_aio.HealthServicer, Sequence[str]]],
        ping: Callable[[], Awaitable[object]],
        *,
        interval_s: float,
    ) -> None:
        self.serving = True
        self._targets = [(health, list(services)) for health, services in targets]
        self._ping, self.interval_s = ping, interval_s
        self._loop = Periodic(self.check, interval_s=interval_s, name="store-watch", failure="store watch failed")

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        """Stop watching (it ends even if the cancel is lost inside the ping: see ``Periodic.close``)."""
        await self._loop.close()

    async def check(self) -> bool:
        """Ping once and set the services' health if it changed; True when the store answered."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await self._ping()
            reachable, error = True, ""
        except Exception as exc:  # whatever the client raises (refused, reset, timed out, loading), the store is out
            reachable, error = False, f"{type(exc).__name__}: {exc}"[:200]
        if reachable != self.serving:
            self.serving = reachable
            for health, services in self._targets:
                for name in services:
                    await health.set(name, SERVING if reachable else NOT_SERVING)
            if reachable:
                log.info("the store answers again: health SERVING")
            else:
                log.warning("the store is unreachable: health NOT_SERVING", extra={"error": error})
        return reachable

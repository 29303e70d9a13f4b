"""Session supervision: close sessions whose client went silent (lost terminates).

A session's deadline is 2 × validity time after its last request (``session.lua`` keeps it in the shard's deadline
zset). The sweeper closes sessions past their deadline with cause TIMEOUT: holds released, the usage reported so far
stays committed, a close event goes to the stream.

One process sweeps for everyone: the one holding the ``sweeper`` lease in Redis (``occ.store.lease``), renewed on
every tick and taken over by another worker within ``lease_ticks`` ticks when its holder dies. Each tick looks at
the next part of the shards (all of them every ``rotation_ticks`` ticks) with ``sweep.lua``, one call per group of
shards that returns only the expired sessions and the shards' open counts, so a tick costs the event loop one small
reply instead of hundreds of command replies. Should two processes sweep at once (a lease taken over from a holder
that was only slow, or :meth:`Sweeper.sweep_once` called by hand), ``session.lua`` re-checks the deadline inside the
atomic close: a session is closed once, and a session that was just updated is left open.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable

from occ.core.payloads import close_request
from occ.core.periodic import Periodic
from occ.store.lease import Lease
from occ.store.scripts import Store
from occ.store.sweep import Expired, SweepReader

log = logging.getLogger(__name__)
SHARDS_PER_CALL = 32  # on a single node: shards one sweep.lua call looks at (well under a millisecond of Redis)
ROTATION_TICKS = 8  # ticks to look at every shard once: a session is closed at most this many intervals late
LEASE_TICKS = 3  # a lease lasts this many intervals: a dead holder is replaced after that long at most


class Sweeper:
    """Closes expired sessions and reports how many sessions are open; owned task (``start``/``close``).

    With a ``lease`` it sweeps only while holding it (one sweeper per deployment); without one, always."""

    def __init__(
        self,
        store: Store,
        *,
        interval_s: float,
        limit: int = 512,
        lease: Lease | None = None,
        on_close: Callable[[str, int], None] | None = None,
        on_count: Callable[[int], None] | None = None,
    ) -> None:
        self.store, self.lease, self._on_close, self._on_count = store, lease, on_close, on_count
        self._reader = SweepReader(store.client, limit=limit)
        size = 1 if store.cluster else SHARDS_PER_CALL  # (a cluster call's keys must share one slot)
        shards = list(range(store.shards))
        self._groups = [shards[first : first + size] for first in range(0, store.shards, size)]
        self._groups_per_tick = math.ceil(len(self._groups) / ROTATION_TICKS)
        self._next_group = 0
        self._open = [0] * store.shards  # last count of each shard's open sessions
        self._job = Periodic(self.tick, interval_s=interval_s, name="sweeper",
                             failure="sweep failed; trying again next interval")  # fmt: skip

    async def tick(self, now_ms: int | None = None) -> int:
        """One run of the job: if this process holds (or takes) the lease, sweep the next part of the shards;
        returns how many sessions were closed."""
        if self.lease is not None:
            held = self.lease.held
            if not await self.lease.hold():
                if held and self._on_count is not None:
                    self._on_count(0)  # counted by the new holder now (the gauge keeps the largest live value)
                return 0
        first = self._next_group
        groups = [self._groups[(first + i) % len(self._groups)] for i in range(self._groups_per_tick)]
        self._next_group = (first + self._groups_per_tick) % len(self._groups)
        return await self._sweep(groups, now_ms)

    async def sweep_once(self, now_ms: int | None = None) -> int:
        """Close the sessions of every shard whose deadline is at or before ``now_ms`` (default now), whoever
        holds the lease; returns how many were closed."""
        return await self._sweep(self._groups, now_ms)

    async def _sweep(self, groups: list[list[int]], now_ms: int | None) -> int:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        found = Expired()
        for shards in groups:
            await self._reader.expired(shards, now_ms, found)
        for shard, count in found.open.items():
            self._open[shard] = count
        if self._on_count is not None:
            self._on_count(sum(self._open))  # open sessions, all frontends together
        if not found.sessions:
            return 0
        requests = [close_request(self.store, account, session_id, cause="TIMEOUT", now_ms=now_ms)
                    for _, session_id, account in found.sessions]  # fmt: skip
        results = await self.store.run_batch("session", requests)
        failed = [result for result in results if isinstance(result, Exception)]
        if failed:
            log.warning("sweeper could not close some sessions", extra={"failed": len(failed), "error": str(failed[0])})
        done = [result for result in results if not isinstance(result, Exception) and result.outcome == "ok"]
        causes = Counter(result.cause for result in done)  # TIMEOUT, or ABORTED
        for cause, closed in causes.items():
            log.info("sweeper closed sessions", extra={"closed": closed, "cause": cause})
            if self._on_close is not None:
                self._on_close(cause, closed)
        return sum(causes.values())

    def start(self) -> None:
        self._job.start()

    async def close(self) -> None:
        """Stop sweeping and give the lease up, so that another worker takes the job over at once."""
        await self._job.close()
        if self.lease is not None:
            await self.lease.release()

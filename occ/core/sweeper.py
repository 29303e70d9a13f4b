"""Session supervision: close sessions whose client went silent (lost terminates).

A session's deadline is 2 × validity time after its last request (``session.lua`` keeps it in the shard's deadline
zset). The sweeper closes sessions past their deadline with cause TIMEOUT: holds released, the usage reported so far
stays committed, a close event goes to the stream. Several frontends may sweep at once: ``session.lua`` re-checks
the deadline inside the atomic close, so a session is closed once and a session that was just updated is left open.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from occ.core.payloads import close_request
from occ.core.periodic import Periodic
from occ.store import keys
from occ.store.scripts import Store

log = logging.getLogger(__name__)


class Sweeper:
    """Closes expired sessions every ``interval_s`` and reports how many sessions are open; owned task
    (``start``/``close``)."""

    def __init__(
        self,
        store: Store,
        *,
        interval_s: float,
        limit: int = 512,
        on_close: Callable[[str, int], None] | None = None,
        on_count: Callable[[int], None] | None = None,
    ) -> None:
        self.store, self.limit, self._on_close, self._on_count = store, limit, on_close, on_count
        self._job = Periodic(self.sweep_once, interval_s=interval_s, name="sweeper",
                             failure="sweep failed; trying again next interval")  # fmt: skip

    async def sweep_once(self, now_ms: int | None = None) -> int:
        """Close the sessions whose deadline is at or before ``now_ms``; returns how many were closed."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        client = self.store.client
        pipe = client.pipeline(transaction=False)
        for shard in range(self.store.shards):
            deadlines = keys.shard_keys(shard)[1]
            pipe.zrangebyscore(deadlines, "-inf", now_ms, start=0, num=self.limit)
            pipe.zcard(deadlines)
        replies = await pipe.execute()
        if self._on_count is not None:
            self._on_count(sum(replies[1::2]))  # open sessions, all frontends together
        expired = [(shard, member.decode()) for shard, members in enumerate(replies[::2]) for member in members]
        if not expired:
            return 0
        pipe = client.pipeline(transaction=False)
        for shard, session_id in expired:
            pipe.hget(keys.session_key(shard, session_id), "account")
        owners = await pipe.execute()
        requests = []
        for (shard, session_id), owner in zip(expired, owners, strict=True):
            if owner is None:  # the session hash expired long ago: only the deadline entry is left
                await client.zrem(keys.shard_keys(shard)[1], session_id)
                continue
            requests.append(close_request(self.store, owner.decode(), session_id, cause="TIMEOUT", now_ms=now_ms))
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
        await self._job.close()

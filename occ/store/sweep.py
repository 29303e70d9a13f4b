"""Finding sessions past their deadline (``lua/sweep.lua``), for the sweeper: one call per group of shards, which
returns only the expired sessions (with their accounts) and each shard's count of open sessions."""

from __future__ import annotations

import redis.asyncio as redis

from occ.store import keys
from occ.store.scripts import LUA_DIR

SWEEP_SCRIPT = (LUA_DIR / "sweep.lua").read_text()


class Expired:
    """What one sweep call found. Attributes: open: shard → open sessions; sessions: (shard, session id, account)
    of the expired ones."""

    __slots__ = ("open", "sessions")

    def __init__(self) -> None:
        self.open: dict[int, int] = {}
        self.sessions: list[tuple[int, str, str]] = []


class SweepReader:
    """Runs ``sweep.lua`` over groups of shards (on a cluster, one shard per call: a call's keys share a slot)."""

    def __init__(self, client: redis.Redis, *, limit: int) -> None:
        self.limit = limit
        self._script = client.register_script(SWEEP_SCRIPT)  # EVALSHA, loaded again if Redis lost it

    async def expired(self, shards: list[int], now_ms: int, found: Expired) -> None:
        """Add to ``found`` the open counts of ``shards`` and their sessions whose deadline is at or before
        ``now_ms`` (at most ``limit`` per shard)."""
        reply = await self._script(keys=[keys.shard_keys(shard)[1] for shard in shards], args=[now_ms, self.limit])
        counts, flat = reply
        for shard, count in zip(shards, counts, strict=True):
            found.open[shard] = int(count)
        for at in range(0, len(flat), 3):
            session, account = flat[at + 1], flat[at + 2]
            found.sessions.append((shards[int(flat[at]) - 1], _text(session), _text(account)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

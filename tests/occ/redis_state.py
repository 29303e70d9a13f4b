"""Everything a redis-server holds, read back for "nothing was written" checks (no fakes: the real server's data)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis


async def redis_state(client: redis.Redis) -> dict[bytes, tuple[str, Any]]:
    """Every key with its type and content; a stream by its entry ids, so any new entry shows."""
    state: dict[bytes, tuple[str, Any]] = {}
    for key in sorted(await client.keys("*")):
        kind = (await client.type(key)).decode()
        if kind == "hash":
            value: Any = await client.hgetall(key)
        elif kind == "set":
            value = sorted(await client.smembers(key))
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = [entry_id for entry_id, _ in await client.xrange(key)]
        else:
            value = await client.get(key)
        state[key] = (kind, value)
    return state


def changed_keys(before: dict[bytes, tuple[str, Any]], after: dict[bytes, tuple[str, Any]]) -> set[str]:
    """Keys added, removed or changed between two ``redis_state`` readings."""
    return {key.decode() for key in before.keys() | after.keys() if before.get(key) != after.get(key)}

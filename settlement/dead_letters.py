"""The entries settlement could not book, as the drain left them on each shard's dead-letter stream."""

from __future__ import annotations

import msgspec

from occ.store.client import RedisClient
from occ.store.keys import dead_letters


class DeadLetter(msgspec.Struct, frozen=True):
    """One dead letter.

    Attributes:
        shard: the shard whose stream held the entry.
        source_id: the entry's id on ``occ:{sNNN}:events``.
        reason: why it could not be booked (names the field).
        fields: the entry's fields as they were.
    """

    shard: int
    source_id: str
    reason: str
    fields: dict[str, str]


async def read_dead_letters(client: RedisClient, shards: int, *, limit: int) -> tuple[list[DeadLetter], int]:
    """(up to ``limit`` dead letters, oldest first per shard, and how many there are in all)."""
    pipe = client.pipeline(transaction=False)
    for shard in range(shards):
        pipe.xlen(dead_letters(shard))
    sizes = await pipe.execute()
    found: list[DeadLetter] = []
    for shard, size in enumerate(sizes):
        if size and len(found) < limit:
            for _, raw in await client.xrange(dead_letters(shard), count=limit - len(found)):
                fields = {_text(k): _text(v) for k, v in raw.items()}
                found.append(DeadLetter(shard, fields.pop("source_id", ""), fields.pop("reason", ""), fields))
    return found, sum(sizes)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value

"""The settlement drain: shard streams → consumer group → booked rows in SQL → acknowledgement.

Per batch: read up to ``read_count`` new entries of every shard (one pipelined round trip), book each
(:func:`settlement.entries.book`), write the batch in one SQL transaction (:class:`settlement.writer.BatchWriter`),
then acknowledge it shard by shard with ``lua/ack.lua``, which also moves malformed entries to the shard's
dead-letter stream. Nothing is acknowledged before its rows are committed, and every insert is idempotent, so a
worker killed at any point loses nothing and duplicates nothing: its unacknowledged entries stay pending in the
group, and after ``claim_idle_s`` another worker (or its own restart) claims them with XAUTOCLAIM.

Streams are trimmed (XTRIM MINID) below the oldest entry some group still needs: the oldest pending one, or the
last delivered one, of every group on the stream, so another consumer group is never robbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from redis.client import NEVER_DECODE
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from occ.store import keys
from occ.store.client import RedisClient, connect
from settlement import metrics
from settlement.close_entries import close_xdr
from settlement.entries import ACCOUNT, Malformed, account_row, book, entry_key
from settlement.records import LedgerRow, XdrRow
from settlement.stream_replies import fields_of, id_order, raw_reply, streams_of, text_map
from settlement.writer import BatchWriter, Booked

log = logging.getLogger(__name__)

ACK_SCRIPT = (Path(__file__).parent / "lua" / "ack.lua").read_text()
READ_SCRIPT = (Path(__file__).parent / "lua" / "read.lua").read_text()
READ_GROUP = 32  # shards per read.lua call on a single node: a call holds Redis for a few ms at most
_decode_read = msgspec.msgpack.Decoder(list[tuple[int, str, msgspec.Raw]]).decode
_decode_fields = msgspec.msgpack.Decoder(dict[str, str]).decode
MAX_BLOCK_S = 0.5  # longest blocking read, whatever poll_s says: a worker asked to stop notices within a second
MAX_BACKOFF_S = 30.0  # longest pause between retries after Redis or the SQL store failed
Entry = tuple[int, str, "dict[str, str] | msgspec.Raw"]  # shard, entry id, fields (as read.lua packs them: Raw)
Groups = list[list[dict[str, Any]]]  # XINFO GROUPS of each shard's stream, in shard order


class DrainOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a worker drains.

    Attributes:
        group: the consumer group all settlement workers share.
        consumer: this worker's name in the group; empty: ``<host>-<pid>``.
        read_count: most new entries read from one shard per batch (all shards are read at once: 256 × 32 = 8,192
            entries at most, small enough for several workers to share a backlog).
        claim_idle_s: entries pending this long with another consumer are taken over (its worker is presumed dead).
        poll_s: while the streams are empty, how long a read waits for an entry (single node: a blocking read, at
            most ``MAX_BLOCK_S``) or the pause between reads (cluster); also the first retry delay after a failure.
        trim: trim the streams below what every group has acknowledged.
        trim_interval_s: how often to trim and to refresh the lag and pending gauges.
    """

    group: str = "settlement"
    consumer: str = ""
    read_count: int = 32
    claim_idle_s: float = 30.0
    poll_s: float = 0.5
    trim: bool = True
    trim_interval_s: float = 5.0


class Backlog(msgspec.Struct, frozen=True):
    """What is left to settle. Attributes: lag: entries not yet delivered; pending: delivered, unacknowledged."""

    lag: int
    pending: int


class Drain:
    """One settlement worker: ``async with Drain(url, engine, shards=…) as drain:`` then :meth:`run` (until stopped)
    or :meth:`drain_once`."""

    def __init__(
        self, redis_url: str, engine: Engine, *, shards: int, cluster: bool = False, options: DrainOptions | None = None
    ) -> None:
        # A client of its own: replies decoded by hiredis, stream reads left as the raw nested lists (redis-py's
        # parsing of XREADGROUP into dicts costs more than booking the entries).
        self.client: RedisClient = connect(redis_url, cluster=cluster, pool_size=4, decode=True)
        self.cluster = cluster
        for command in ("XREADGROUP", "XAUTOCLAIM"):
            self.client.set_response_callback(command, raw_reply)
        self.writer = BatchWriter(engine)
        self.shards = shards
        self.options = options or DrainOptions()
        self.consumer = self.options.consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.streams = [keys.shard_keys(shard)[0] for shard in range(shards)]
        self._shard_of = {stream: shard for shard, stream in enumerate(self.streams)}
        self.booked = 0
        self.dead_letters = 0
        # Where to go on reading this consumer's own unacknowledged entries, per shard (None: read new ones). A
        # restart by name starts there, and so does the loop after a failed batch.
        self._pending_from: list[str] | None = ["0"] * shards
        self._ack_sha = self._read_sha = ""
        size = 1 if cluster else READ_GROUP  # (a call's keys must share a slot on a cluster: one shard each)
        self._read_groups = [(first, self.streams[first : first + size]) for first in range(0, shards, size)]
        self._block_ms = max(1, int(min(self.options.poll_s, MAX_BLOCK_S) * 1000))  # (BLOCK 0 would wait forever)

    async def close(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> Drain:
        await self.setup()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def setup(self) -> None:
        """Create the consumer group on every shard's stream (from its first entry) and load the ack script."""
        pipe = self.client.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xgroup_create(stream, self.options.group, id="0", mkstream=True)
        for reply in await pipe.execute(raise_on_error=False):
            if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
                raise reply
        await self._load_scripts()

    async def _load_scripts(self) -> None:
        """Load the scripts (again after a Redis failure: a restarted Redis has lost them; loading is idempotent)."""
        self._ack_sha = await self.client.script_load(ACK_SCRIPT)
        self._read_sha = await self.client.script_load(READ_SCRIPT)

    # -- batches -----------------------------------------------------------------------------------------------

    async def pump(self, max_s: float = 1.0, *, wait_ms: int = 0, stop: asyncio.Event | None = None) -> int:
        """Settle new entries (this consumer's own pending ones first) until the streams are empty, ``max_s`` has
        passed or ``stop`` is set; returns how many. Reading and booking the next batch overlaps writing the previous
        one (the SQL write runs in a thread); at most one booked batch waits for the write in progress, so memory
        stays bounded. With ``wait_ms``, the first read waits that long for an entry to arrive (single-node Redis:
        one blocking XREADGROUP over every stream, so an idle worker costs nothing).

        A failed write is raised here, after the read in progress. The writes are awaited, never cancelled:
        control never depends on a cancellation reaching a Redis call (Python 3.11's ``asyncio.wait_for``, which
        redis-py uses for its socket timeouts, can swallow one, and a reader that missed it waited forever)."""
        deadline = time.monotonic() + max_s
        count = 0
        block_ms = wait_ms
        writing: asyncio.Task[None] | None = None
        try:
            while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
                entries = await self._next(block_ms)
                block_ms = 0
                if not entries:
                    break
                count += len(entries)
                batch = self._book(entries)
                if writing is not None:
                    await writing  # the previous batch is committed and acknowledged, or its failure raised
                writing = asyncio.create_task(self._commit(batch))
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():  # a read failed: let the write in progress finish
                await asyncio.wait([writing])
            if writing is not None and not writing.cancelled():
                writing.exception()  # retrieved: when a read failed too, that failure is the one raised
        return count

    async def _next(self, block_ms: int = 0) -> list[Entry]:
        if self._pending_from is not None:
            entries = await self._read(self._pending_from)
            if entries:
                for shard, entry_id, _ in entries:  # in order: the last one of each shard is where to go on
                    self._pending_from[shard] = entry_id
                return entries
            self._pending_from = None
        if self.cluster or not block_ms:  # (streams in other slots cannot share one command)
            return await self._read(">")
        # One XREADGROUP over every stream, which waits for the first new entry (a backlog reads faster per shard).
        reply = await self.client.xreadgroup(
            self.options.group, self.consumer, dict.fromkeys(self.streams, ">"), count=self.options.read_count,
            block=block_ms,
        )  # fmt: skip
        return [
            (self._shard_of[stream], entry_id, fields_of(f))
            for stream, items in streams_of(reply)
            for entry_id, f in items
        ]

    async def claim(self, idle_s: float | None = None) -> int:
        """Take over and settle entries idle longer than ``idle_s`` (default ``claim_idle_s``) with any consumer;
        returns how many. ``idle_s=0`` takes over everything pending (``occ settle --claim-now``: after a crash,
        when the operator knows no other worker is alive)."""
        idle_s = self.options.claim_idle_s if idle_s is None else idle_s
        idle_ms = int(idle_s * 1000)
        total = 0
        for shard, stream in enumerate(self.streams):
            cursor = "0-0"
            while True:
                reply = await self.client.xautoclaim(
                    stream, self.options.group, self.consumer, idle_ms, start_id=cursor, count=self.options.read_count
                )
                cursor, claimed = reply[0], reply[1]
                gone = list(reply[2]) if len(reply) > 2 else []
                gone += [entry_id for entry_id, fields in claimed if fields is None]
                if gone:  # deleted from the stream while pending: nothing left to book
                    await self.client.xack(stream, self.options.group, *gone)
                entries = [(shard, entry_id, fields_of(f)) for entry_id, f in claimed if f is not None]
                if entries:
                    await self._commit(self._book(entries))
                total += len(entries)
                if cursor == "0-0":
                    break
        if total:
            log.info("claimed %d entries idle for more than %.1f s", total, idle_s)
        return total

    async def _read(self, start: str | list[str]) -> list[Entry]:
        """Read from ``start`` (an id per shard, or ``>`` for new entries) with ``lua/read.lua``: one call per group
        of ``READ_GROUP`` shards (one shard on a cluster), all in one pipeline, each reply a MessagePack blob decoded
        in one call (no per-field reply objects from the Redis client)."""
        starts = [start] * self.shards if isinstance(start, str) else start
        options = self.options
        pipe = self.client.pipeline(transaction=False)
        for first, streams in self._read_groups:
            pipe.execute_command(
                "EVALSHA", self._read_sha, len(streams), *streams, options.group, self.consumer, options.read_count,
                *starts[first : first + len(streams)], **{NEVER_DECODE: True},
            )  # fmt: skip
        entries: list[Entry] = []
        for (first, _), blob in zip(self._read_groups, await pipe.execute(), strict=True):
            if blob:
                entries.extend((first + k - 1, entry_id, fields) for k, entry_id, fields in _decode_read(blob))
        return entries

    def _book(self, entries: Sequence[Entry]) -> _Batch:
        started = time.perf_counter()
        now_ms = int(time.time() * 1000)
        batch = _Batch(started, entries)
        booked, dead = batch.booked, batch.dead
        for shard, entry_id, fields in entries:
            key = entry_key(shard, entry_id)
            try:
                booked.append(_booked(key, fields, now_ms))
            except Malformed as error:
                dead[key] = str(error)
            except Exception as error:  # a bug must not stop every other entry behind this one
                log.exception("booking %s failed", key)
                dead[key] = f"settlement could not book it: {type(error).__name__}: {error}"
        return batch

    async def _commit(self, batch: _Batch) -> None:
        """Write the batch to SQL (in a thread: the event loop keeps reading), then acknowledge it."""
        written = await asyncio.to_thread(self.writer.write, batch.booked)
        dead = batch.dead | written.refused
        await self._acknowledge(batch.entries, dead)
        booked = len(batch.entries) - len(dead)
        self.booked += booked
        self.dead_letters += len(dead)
        metrics.ENTRIES.labels("booked").inc(booked)
        metrics.ENTRIES.labels("dead_letter").inc(len(dead))
        metrics.ROWS.labels("ledger").inc(written.ledger_rows)
        metrics.ROWS.labels("xdrs").inc(written.xdr_rows)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - batch.started)
        for key, reason in dead.items():
            log.warning("dead letter %s: %s", key, reason)

    async def _acknowledge(self, entries: Sequence[Entry], dead: dict[str, str]) -> None:
        """One ``ack.lua`` call per shard, all in one pipeline: the booked ids go as one space-separated argument
        (one argument per id cost more to send than the script takes to run)."""
        by_shard: dict[int, tuple[list[Any], list[str]]] = {}
        for shard, entry_id, fields in entries:
            letters, booked = by_shard.setdefault(shard, ([], []))
            if dead and (reason := dead.get(entry_key(shard, entry_id))) is not None:
                letters.extend((entry_id, reason, msgspec.msgpack.encode(fields)))
            else:
                booked.append(entry_id)
        pipe = self.client.pipeline(transaction=False)
        for shard, (letters, booked) in by_shard.items():
            stream = self.streams[shard]
            pipe.execute_command(
                "EVALSHA", self._ack_sha, 2, stream, keys.dead_letters(shard), self.options.group,
                len(letters) // 3, *letters, " ".join(booked),
            )  # fmt: skip
        await pipe.execute()

    # -- the backlog and trimming ------------------------------------------------------------------------------

    async def backlog(self, groups: Groups | None = None) -> Backlog:
        """Entries not yet delivered to the group and entries delivered but unacknowledged, over all shards
        (from ``groups``, the streams' XINFO GROUPS, when the caller has just read them)."""
        lag = pending = 0
        for stream, stream_groups in zip(self.streams, groups or await self._groups(), strict=True):
            for group in stream_groups:
                if group["name"] == self.options.group:
                    pending += int(group["pending"])
                    lag += int(group["lag"]) if group.get("lag") is not None else await self._lag(stream, group)
        metrics.LAG.set(lag)
        metrics.PENDING.set(pending)
        return Backlog(lag, pending)

    async def _lag(self, stream: str, group: dict[str, Any]) -> int:
        """Undelivered entries when Redis cannot tell the lag (after a trim or deletion): count them."""
        after = group["last-delivered-id"]
        return len(await self.client.xrange(stream, min=f"({after}", max="+"))

    async def _groups(self) -> Groups:
        pipe = self.client.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xinfo_groups(stream)
        return await pipe.execute()

    async def trim(self, groups: Groups | None = None) -> int:
        """Trim every stream below the oldest entry any of its groups still needs; returns entries removed."""
        removed = 0
        for stream, stream_groups in zip(self.streams, groups or await self._groups(), strict=True):
            if not stream_groups:
                continue
            keep = []
            for group in stream_groups:
                oldest_pending = None
                if int(group["pending"]):  # (may have been acknowledged since XINFO: then min is None)
                    oldest_pending = (await self.client.xpending(stream, group["name"]))["min"]
                keep.append(oldest_pending or group["last-delivered-id"])
            oldest = min(keep, key=id_order)
            if oldest != "0-0":
                removed += await self.client.xtrim(stream, minid=oldest, approximate=False)
        return removed

    # -- loops -------------------------------------------------------------------------------------------------

    async def drain_once(self) -> Backlog:
        """Settle everything there is now (claiming what idled past ``claim_idle_s``), then return what is left:
        entries still pending with other live workers, and entries added meanwhile."""
        for _ in range(2):  # claim, drain; then once more for what was claimable only after the first pass
            await self.claim()
            while await self.pump():
                pass
        return await self._housekeep()

    async def _housekeep(self) -> Backlog:
        """Trim (unless told not to) and refresh the backlog gauges, from one XINFO GROUPS round trip. Trimming
        removes only delivered, acknowledged entries, so it changes neither the lag nor the pending count."""
        groups = await self._groups()
        if self.options.trim:
            await self.trim(groups)
        return await self.backlog(groups)

    async def run(self, stop: asyncio.Event) -> None:
        """Settle until ``stop`` is set, which ends the loop within a second (the batch in hand is finished, an
        idle read waits at most ``MAX_BLOCK_S``). Redis and SQL failures are logged, counted and retried with
        backoff (from ``poll_s`` doubling up to ``MAX_BACKOFF_S``); the entries already read stay pending with this
        worker and are read again from the start of its pending list, so they settle as soon as the store is back,
        with no new traffic needed."""
        next_claim = next_trim = 0.0
        backoff_s = self.options.poll_s
        recovering = False
        while not stop.is_set():
            try:
                if recovering:
                    await self._load_scripts()
                    recovering = False
                now = time.monotonic()
                if now >= next_claim:
                    await self.claim()
                    next_claim = now + max(self.options.claim_idle_s / 2, 0.5)
                if now >= next_trim:
                    await self._housekeep()
                    next_trim = now + self.options.trim_interval_s
                if await self.pump(wait_ms=0 if self.cluster else self._block_ms, stop=stop):
                    backoff_s = self.options.poll_s
                    continue
                wait_s = self.options.poll_s if self.cluster else 0.0  # a single node waited in XREADGROUP
            except* (RedisError, OSError) as group:
                metrics.ERRORS.labels("redis").inc()
                log.error("settlement: Redis failed, retrying in %.1f s: %s", backoff_s, group.exceptions[0])
                self._pending_from = ["0"] * self.shards  # what was read stays pending with us: read it again first
                recovering = True
                wait_s, backoff_s = backoff_s, min(backoff_s * 2, MAX_BACKOFF_S)
            except* DBAPIError as group:
                metrics.ERRORS.labels("sql").inc()
                log.error("settlement: the SQL store failed, retrying in %.1f s: %s", backoff_s, group.exceptions[0])
                self._pending_from = ["0"] * self.shards
                wait_s, backoff_s = backoff_s, min(backoff_s * 2, MAX_BACKOFF_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait_s)


class _Batch:
    """Entries read together: what they book, and which are dead letters (key → reason)."""

    __slots__ = ("booked", "dead", "entries", "started")

    def __init__(self, started: float, entries: Sequence[Entry]) -> None:
        self.started = started
        self.entries = entries
        self.booked: list[Booked] = []
        self.dead: dict[str, str] = {}


def _booked(key: str, entry: dict[str, str] | msgspec.Raw, now_ms: int) -> Booked:
    """What one entry books: an account's row (an ``account`` entry), or ledger rows and xDRs; raises Malformed.

    An entry read by ``read.lua`` (packed fields) is first offered to the bulk path for session closes, most of a
    backlog; what it does not take is booked by the reference, ``entries.book``."""
    if isinstance(entry, msgspec.Raw):
        xdr = close_xdr(key, entry, now_ms)
        if xdr is not None:
            return Booked(key, (), (xdr,), (xdr.account, xdr.currency, xdr.end_ms))
        try:
            entry = _decode_fields(entry)
        except msgspec.DecodeError:  # bytes that are not UTF-8: replaced, as the Redis client would
            entry = text_map(bytes(entry))
    fields = entry
    if fields.get("type") == ACCOUNT:
        row = account_row(key, fields)
        return Booked(key, (), (), (row.account, row.currency, row.first_seen_ms), settings=row)
    ledger, xdrs = book(key, fields, now_ms)
    return Booked(key, ledger, xdrs, (fields["account"], fields["currency"], ledger_time(ledger, xdrs)))


def ledger_time(ledger: Sequence[LedgerRow], xdrs: Sequence[XdrRow]) -> int:
    return ledger[0].time_ms if ledger else xdrs[0].end_ms

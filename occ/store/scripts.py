"""The Redis side of OCC: the Lua scripts in ``occ/store/lua/`` and the calls that run them.

Hot-path operations take whole batches: the requests of a batch are grouped (one group on a single Redis node, one
group per shard on Redis Cluster, where a script may only touch one slot) and every group is one ``EVALSHA``, all
groups of a batch in one pipeline: one network round trip per batch, whatever its size.

Each round trip can be reported to an ``on_roundtrip(script name, seconds)`` hook (the server counts and times
them in its metrics); this package imports no metrics of its own.

With ``replicas`` (a :class:`~occ.store.replication.ReplicaAck`), every pipeline that runs a writing script ends
with ``WAIT`` in the same round trip, and a read that finds a stored answer is confirmed the same way before it is
replayed: an answer leaves the store only once enough replicas hold what it reports (``replication.py``).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as redis
from redis.exceptions import NoScriptError, RedisError

from occ.store.keys import ACCOUNT_KEYS, ACCOUNTS_INDEXED, AccountKeys, account_index, session_key, shard_keys
from occ.store.replication import ReplicaAck
from occ.store.shapes import CloseRequest, EventRequest, ReadReply, ReadRequest, ScriptReply, SessionRequest

LUA_DIR = Path(__file__).with_name("lua")
_encode = msgspec.msgpack.Encoder().encode

Payload = ReadRequest | SessionRequest | CloseRequest | EventRequest
"""A request of a batch script (``shapes.py``); its ``k`` is set by :meth:`Store.run_batch`."""


class Script:
    """One ``.lua`` file, run by SHA (loaded again if the server lost it); a batch script decodes its replies into
    ``reply`` structures (``shapes.py``)."""

    def __init__(self, name: str, reply: type[msgspec.Struct] | None = None) -> None:
        self.name = name
        self.source = (LUA_DIR / f"{name}.lua").read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()
        self.decode = msgspec.msgpack.Decoder(list[reply] if reply else Any).decode  # type: ignore[valid-type]


SCRIPTS = {
    script.name: script
    for script in (
        Script("read", ReadReply),
        Script("session", ScriptReply),
        Script("event", ScriptReply),
        Script("account"),
        Script("transaction"),
    )
}


class KeyedRequest:
    """A request for a batch script, with the keys it touches (all in one shard)."""

    __slots__ = ("keys", "payload", "shard")

    def __init__(self, shard: int, keys: Sequence[str], payload: Payload) -> None:
        self.shard, self.keys, self.payload = shard, keys, payload


Call = tuple[list[str], tuple[Any, ...]]
"""One script call: its KEYS and its ARGV."""

RoundtripHook = Callable[[str, float], None]
"""Called after each batch round trip with the script's name and how long the round trip took, in seconds."""


READ_ONLY_SCRIPTS = ("read",)


class Store:
    """Runs OCC's scripts against Redis (a single node, a Sentinel primary or a cluster)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        shards: int,
        cluster: bool,
        on_roundtrip: RoundtripHook | None = None,
        replicas: ReplicaAck | None = None,
    ) -> None:
        if cluster and replicas is not None:
            raise ValueError("waiting for replicas (WAIT) is not supported on Redis Cluster")
        self.client, self.shards, self.cluster, self._on_roundtrip = client, shards, cluster, on_roundtrip
        self.replicas = replicas

    def keys(self, account_id: str) -> AccountKeys:
        return AccountKeys(account_id, self.shards)

    async def load_scripts(self) -> None:
        """Load every script so that EVALSHA finds them (redis-py sends SCRIPT LOAD to every primary of a cluster)."""
        for script in SCRIPTS.values():
            await self.client.script_load(script.source)

    async def run_batch(self, script: str, requests: Sequence[KeyedRequest]) -> list[Any]:
        """Run a batch script over ``requests``; return the script's per-request replies (``shapes.py``: a
        :class:`ReadReply` or a :class:`ScriptReply`) in request order, an exception where its group failed."""
        if not requests:
            return []
        groups: dict[int, tuple[list[str], dict[str, int], list[Payload], list[int]]] = {}
        for position, request in enumerate(requests):
            keys, index, payloads, positions = groups.setdefault(request.shard if self.cluster else 0, ([], {}, [], []))
            indices = []
            for key in request.keys:
                if key not in index:
                    keys.append(key)
                    index[key] = len(keys)
                indices.append(index[key])
            request.payload.k = indices
            payloads.append(request.payload)
            positions.append(position)
        calls: list[Call] = [(keys, (_encode(payloads),)) for keys, _, payloads, _ in groups.values()]
        runner = SCRIPTS[script]
        replies = await self._evalsha_all(runner, calls)
        results: list[Any] = [None] * len(requests)
        for (_, _, _, positions), reply in zip(groups.values(), replies, strict=True):
            # A group whose script failed fails its own requests only (each gets the exception).
            answers = [reply] * len(positions) if isinstance(reply, Exception) else runner.decode(reply)
            for position, result in zip(positions, answers, strict=True):
                results[position] = result
        if self.replicas is not None and script == "read":
            await self._confirm_stored(results)
        return results

    async def _confirm_stored(self, results: list[Any]) -> None:
        """Reads that found a stored answer are about to replay it: confirm that the replicas hold it first (an
        earlier attempt's WAIT may have failed), else fail those reads."""
        stored = [i for i, result in enumerate(results) if isinstance(result, ReadReply) and result.stored]
        if stored:
            error = await self.confirm_replicated()
            if error is not None:
                for position in stored:
                    results[position] = error

    async def confirm_replicated(self) -> Exception | None:
        """Wait until the replicas hold everything the primary has now; the error when they do not in time (None
        without ``replicas``)."""
        if self.replicas is None:
            return None
        pipe = self.client.pipeline(transaction=False)
        self.replicas.add(pipe)
        return self.replicas.failure(*await pipe.execute(raise_on_error=False))

    async def _evalsha_all(self, script: Script, calls: list[Call]) -> list[bytes | Exception]:
        """One EVALSHA per call, all in one pipeline; a call's error is returned in its place. Calls that found the
        script missing (the server restarted or flushed its script cache) are run once more after loading it."""
        replies = await self._pipeline(script, calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.load_scripts()
            for i, reply in zip(missing, await self._pipeline(script, [calls[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, script: Script, calls: list[Call]) -> list[bytes | Exception]:
        started = time.perf_counter()
        wait = self.replicas is not None and script.name not in READ_ONLY_SCRIPTS
        try:
            if len(calls) == 1 and not wait:
                keys, args = calls[0]
                try:
                    return [await self.client.evalsha(script.sha, len(keys), *keys, *args)]
                except RedisError as error:
                    return [error]
            pipe = self.client.pipeline(transaction=False)
            for keys, args in calls:
                # execute_command, not pipe.evalsha: redis-py refuses evalsha in cluster pipelines but routes a
                # plain EVALSHA by its first key, which is what a shard group needs.
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            if wait:
                assert self.replicas is not None
                self.replicas.add(pipe)
                return self.replicas.check(await pipe.execute(raise_on_error=False))
            return await pipe.execute(raise_on_error=False)
        finally:
            if self._on_roundtrip is not None:
                self._on_roundtrip(script.name, time.perf_counter() - started)

    # -- administration (not on the hot path: one call each) -------------------------------------------------

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        script = SCRIPTS[name]
        if self.replicas is not None:  # one pipeline: the script, then WAIT on the same connection
            [reply] = await self._evalsha_all(script, [(list(keys), tuple(args))])
            if isinstance(reply, Exception):
                raise reply
            return reply
        try:
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load_scripts()
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)

    async def write_account(self, account_id: str, mode: str, fields: dict[str, str | int]) -> str:
        """Create (``mode="create"``) or update an account's settings, with its ``account`` entry on the shard's
        stream (``lua/account.lua``); returns "ok", "exists" or "missing"."""
        keys = self.keys(account_id)
        flat = [value for pair in fields.items() for value in pair]
        reply = await self._script(
            "account", [keys.account, keys.events, keys.index], [mode, int(time.time() * 1000), *flat]
        )
        return reply.decode()

    async def read_account(self, account_id: str) -> dict[str, str] | None:
        [account] = await self.read_accounts([account_id])
        return account

    async def read_accounts(self, account_ids: Sequence[str]) -> list[dict[str, str] | None]:
        """Each account's fields and ``open_sessions`` (None for an unknown id), in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        for account_id in account_ids:
            keys = self.keys(account_id)
            pipe.hgetall(keys.account)
            pipe.scard(keys.sessions)
        replies = await pipe.execute()
        accounts: list[dict[str, str] | None] = []
        for fields, open_sessions in zip(replies[::2], replies[1::2], strict=True):
            account = {k.decode(): v.decode() for k, v in fields.items()} if fields else None
            if account is not None:
                account["open_sessions"] = str(open_sessions)
            accounts.append(account)
        return accounts

    async def account_ids(self, *, prefix: str, after: str, limit: int) -> tuple[list[str], bool]:
        """Up to ``limit`` account ids starting with ``prefix`` and sorting after ``after`` (empty: from the first),
        in byte order, and whether more follow. Each shard's index is asked for ``limit + 1`` (one pipeline; on a
        cluster redis-py sends each node its own) and the answers merged."""
        low = f"({after}" if after and after >= prefix else f"[{prefix}"
        high = b"[" + prefix.encode() + b"\xff" if prefix else b"+"  # no UTF-8 holds 0xff: above every id with prefix
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.shards):
            pipe.zrangebylex(account_index(shard), low, high, start=0, num=limit + 1)
        found = sorted(member for members in await pipe.execute() for member in members)
        return [member.decode() for member in found[:limit]], len(found) > limit

    async def index_accounts(self, batch: int = 1000) -> int:
        """Put every account into its shard's index: those created before the index existed (``account.lua`` adds
        the others as it creates them). Done once per Redis (``ACCOUNTS_INDEXED`` says so), safe to run anywhere at
        once (ZADD NX); returns how many it added."""
        if await self.client.get(ACCOUNTS_INDEXED):
            return 0
        added, found = 0, []
        async for key in self.client.scan_iter(match=ACCOUNT_KEYS, count=batch, _type="HASH"):
            account_id = key.decode().split(":acct:", 1)[1]
            if ":" not in account_id:  # (not one of an account's own hashes: …:txn, …:evt:<id>)
                found.append(account_id)
            if len(found) >= batch:
                added, found = added + await self._add_to_index(found), []
        added += await self._add_to_index(found)
        await self.client.set(ACCOUNTS_INDEXED, "1")
        return added

    async def _add_to_index(self, account_ids: list[str]) -> int:
        pipe = self.client.pipeline(transaction=False)
        for account_id in account_ids:
            pipe.zadd(self.keys(account_id).index, {account_id: 0}, nx=True)
        return sum(await pipe.execute()) if account_ids else 0

    async def open_session_ids(self, limit: int) -> list[tuple[str, str]]:
        """(account, session) of up to ``limit`` open sessions over every shard, those whose deadline comes first."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.shards):
            pipe.zrange(shard_keys(shard)[1], 0, limit - 1, withscores=True)
        due = sorted((score, shard, member.decode()) for shard, members in enumerate(await pipe.execute())
                     for member, score in members)[:limit]  # fmt: skip
        pipe = self.client.pipeline(transaction=False)
        for _, shard, session_id in due:
            pipe.hget(session_key(shard, session_id), "account")
        owners = await pipe.execute()
        return [(owner.decode(), session_id) for (_, _, session_id), owner in zip(due, owners, strict=True) if owner]

    async def transact(
        self,
        account_id: str,
        *,
        key: str,
        kind: str,
        amount_micros: int,
        ledger_code: int,
        description: str,
        actor: str = "",
    ) -> tuple[str, str, int, int]:
        """Apply a money movement once per idempotency key; returns (outcome, transaction id, balance, tax): tax is
        the prepaid tax taken from a top-up (``lua/transaction.lua``), else 0. ``actor`` (who asked) goes on the
        event."""
        keys = self.keys(account_id)
        digest = hashlib.sha256(_encode([kind, amount_micros, ledger_code, description])).hexdigest()[:16]
        now_ms = int(time.time() * 1000)
        args = [key, kind, amount_micros, ledger_code, description, now_ms, uuid.uuid4().hex, digest, actor]
        reply = await self._script("transaction", [keys.account, keys.transactions, keys.events], args)
        outcome = reply[0].decode()
        if outcome in ("ok", "dup"):
            return outcome, reply[1].decode(), int(reply[2]), int(reply[3])
        return outcome, "", 0, 0

    async def open_sessions(self, account_id: str) -> list[dict[str, str | int]]:
        """The account's open sessions, by id (as :meth:`sessions` gives them)."""
        ids = sorted(member.decode() for member in await self.client.smembers(self.keys(account_id).sessions))
        return await self.sessions([(account_id, session_id) for session_id in ids])

    async def sessions(self, wanted: Sequence[tuple[str, str]]) -> list[dict[str, str | int]]:
        """The (account, session) pairs' fields, and ``held``, what each holds over all its rating groups; two
        pipelines, whatever the number of accounts."""
        fields = ("last_rn", "cost", "called", "started_ms", "deadline_ms", "rgs")
        pipe = self.client.pipeline(transaction=False)
        for account_id, session_id in wanted:
            pipe.hmget(self.keys(account_id).session(session_id), *fields)
        sessions = []
        for (account_id, session_id), values in zip(wanted, await pipe.execute() if wanted else [], strict=True):
            record = {name: (value or b"").decode() for name, value in zip(fields, values, strict=True)}
            sessions.append({"account_id": account_id, "session_id": session_id, **record})
        pipe = self.client.pipeline(transaction=False)
        for session in sessions:  # every session asks for at least one field, so that replies line up
            groups = [group for group in str(session["rgs"]).split(",") if group]
            key = self.keys(str(session["account_id"])).session(str(session["session_id"]))
            pipe.hmget(key, "state", *(f"rg:{group}:hold" for group in groups))
        for session, (_, *holds) in zip(sessions, await pipe.execute() if sessions else [], strict=True):
            session["held"] = sum(int(hold or 0) for hold in holds)
        return sessions

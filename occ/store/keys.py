"""Every Redis key OCC uses, built in one place.

Accounts map to ``shards`` virtual shards: ``shard = crc32(account_id) % shards``. Every key of an account carries its
shard's hash tag (``{s017}``), so in Redis Cluster an account, its sessions, its idempotency records and its shard's
event stream share one slot and a single Lua call may change all of them atomically.

| key | type | holds |
|---|---|---|
| ``occ:{sNNN}:acct:<account>`` | hash | balance, credit_limit, reserved (micro-units), status, currency, plan … |
| ``occ:{sNNN}:acct:<account>:sessions`` | set | ids of the account's open sessions |
| ``occ:{sNNN}:acct:<account>:txn`` | hash | idempotency key → stored answer of an admin transaction |
| ``occ:{sNNN}:sess:<session>`` | hash | the session (see ``lua/session.lua``) and its stored answers ``ans:<n>`` |
| ``occ:{sNNN}:acct:<account>:evt:<id>`` | hash | stored answers of one-shot events ``ans:<n>`` (a day) |
| ``occ:{sNNN}:accounts`` | zset | ids of the shard's accounts, all scored 0 (paged with ZRANGEBYLEX) |
| ``occ:{sNNN}:deadlines`` | zset | open session ids scored by the time (ms) the sweeper may close them |
| ``occ:{sNNN}:events`` | stream | every balance change, session close and account change, for settlement |
| ``occ:{sNNN}:events:dead`` | stream | entries settlement could not book, with the reason (dead letters) |
| ``occ:accounts:indexed`` | string | set once every account made before the index existed is in it |
| ``occ:tariff:current`` | string | hash of the tariff in force |
| ``occ:tariff:<hash>`` | string | the tariff (msgpack of its model) |
| ``occ:lease:<job>`` | string | id of the process running a job for everyone (``sweeper``, ``tariff-watch``) |
"""

from __future__ import annotations

import zlib

PREFIX = "occ"
RERATE_KEY = "rerate:"
"""Idempotency-key prefix (in ``…:acct:<account>:txn``) reserved for the balance corrections of ``occ rerate``:
settlement books their ledger row but no xDR, and the Admin API refuses it from anyone else."""
TARIFF_CURRENT = f"{PREFIX}:tariff:current"
ACCOUNTS_INDEXED = f"{PREFIX}:accounts:indexed"
ACCOUNT_KEYS = f"{PREFIX}:{{s*}}:acct:*"
"""SCAN pattern of every account's keys (an account hash's id holds no ':'; its own keys add one)."""
NOTICE_CHANNEL = f"{PREFIX}:notices"
"""Pub/sub channel of notices for switches, ``<kind>\n<account>\n<session>\n<reason>``: ``abort`` (an administrator
ended the session) or ``reauth`` (credit was added: come back with an update); frontends push them on the stream
carrying that account's session."""


def shard_of(account_id: str, shards: int) -> int:
    return zlib.crc32(account_id.encode()) % shards


def tag(shard: int) -> str:
    return f"{{s{shard:03d}}}"


def lease(job: str) -> str:
    """The lease of a background job that one process runs for everyone (``occ.store.lease``)."""
    return f"{PREFIX}:lease:{job}"


def tariff_blob(tariff_hash: str) -> str:
    return f"{PREFIX}:tariff:{tariff_hash}"


class AccountKeys:
    """The keys of one account (and of its sessions), all in the account's shard."""

    __slots__ = ("account", "deadlines", "events", "index", "sessions", "shard", "transactions")

    def __init__(self, account_id: str, shards: int) -> None:
        self.shard = shard_of(account_id, shards)
        base = f"{PREFIX}:{tag(self.shard)}"
        self.account = f"{base}:acct:{account_id}"
        self.sessions = f"{self.account}:sessions"
        self.transactions = f"{self.account}:txn"
        self.events = f"{base}:events"
        self.deadlines = f"{base}:deadlines"
        self.index = account_index(self.shard)

    def session(self, session_id: str) -> str:
        return session_key(self.shard, session_id)

    def session_script(self, session_id: str) -> list[str]:
        """The KEYS of ``lua/session.lua`` for one of this account's sessions, in the script's order."""
        return [self.account, self.session(session_id), self.sessions, self.events, self.deadlines]

    def event_answers(self, session_id: str) -> str:
        return f"{self.account}:evt:{session_id}"


def session_key(shard: int, session_id: str) -> str:
    return f"{PREFIX}:{tag(shard)}:sess:{session_id}"


def shard_keys(shard: int) -> tuple[str, str]:
    """(events stream, deadlines zset) of a shard, for the sweeper and settlement."""
    base = f"{PREFIX}:{tag(shard)}"
    return f"{base}:events", f"{base}:deadlines"


def account_index(shard: int) -> str:
    """The sorted set of a shard's account ids (all scored 0: ``ZRANGEBYLEX`` pages through them in byte order)."""
    return f"{PREFIX}:{tag(shard)}:accounts"


def dead_letters(shard: int) -> str:
    """The stream where settlement moves the entries of a shard it cannot book (``source_id``, ``reason``, fields)."""
    return f"{PREFIX}:{tag(shard)}:events:dead"

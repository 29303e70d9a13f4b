"""``occ reconcile``: every account's live balance (Redis) against its opening balance plus its ledger (SQL).

The invariant of ``docs/events.md``: once the event streams are drained, for every account

    live balance == accounts.opening_balance + Σ ledger.amount

Accounts are taken from both sides: every account hash in Redis (``occ:{sNNN}:acct:<id>``; account ids never hold
``:``, so ``…:sessions``, ``…:txn`` and ``…:evt:<id>`` are told apart by the colon) and every account the SQL store
knows (``accounts`` and ``ledger``). An account on one side only counts as balance 0 there; it is a mismatch unless
its balance is 0 and it has no ledger rows.

A comparison is only meaningful with nothing in flight. :func:`reconcile` first asks the settlement group for its
backlog (undelivered + unacknowledged entries) and stops there when there is one. It then notes every stream's last
entry id, reads the SQL totals (one grouped query) and the live balances (SCAN + pipelined HMGET), and notes the ids
again: if a stream moved meanwhile, a balance changed during the check, and the report says so instead of claiming
mismatches that may only be changes in flight.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec
from sqlalchemy import Engine, func, select

from occ.store import keys
from occ.store.client import RedisClient
from settlement.drain import Backlog, Drain, DrainOptions
from settlement.store.database import reading
from settlement.store.schema import accounts, ledger

ACCOUNT_PATTERN = f"{keys.PREFIX}:{{s*}}:acct:*"
SCAN_COUNT = 1_000
PIPELINE_CHUNK = 1_000


class Outcome(enum.IntEnum):
    """The exit status of ``occ reconcile``."""

    CLEAN = 0
    MISMATCHES = 1
    NOT_DRAINED = 2


class Mismatch(msgspec.Struct, frozen=True):
    """One account whose live balance is not what its ledger says.

    Attributes:
        account: the account id.
        currency: its currency (from Redis, else from SQL).
        live_micros: the balance in Redis; None when Redis has no such account.
        expected_micros: opening balance + Σ ledger amounts (0 when SQL does not know the account).
        ledger_rows: how many ledger rows the account has.
        note: what is odd besides the numbers ("not in Redis", "not in the SQL store"), or "".
    """

    account: str
    currency: str
    live_micros: int | None
    expected_micros: int
    ledger_rows: int
    note: str

    @property
    def difference_micros(self) -> int:
        """live − expected: positive when Redis holds more than the ledger accounts for."""
        return (self.live_micros or 0) - self.expected_micros


class Report(msgspec.Struct, frozen=True):
    """The result of one reconciliation.

    Attributes:
        backlog: what the settlement group had left to settle when the check started.
        checked: whether balances were compared (False: stopped on the backlog).
        accounts: accounts compared (the union of both sides).
        mismatches: the accounts that do not reconcile, by account id.
        moved: a stream received entries during the check, so mismatches may be changes in flight.
    """

    backlog: Backlog
    checked: bool
    accounts: int = 0
    mismatches: list[Mismatch] = []
    moved: bool = False

    @property
    def outcome(self) -> Outcome:
        if not self.checked or (self.moved and self.mismatches):
            return Outcome.NOT_DRAINED
        return Outcome.MISMATCHES if self.mismatches else Outcome.CLEAN


async def reconcile(
    redis_url: str,
    engine: Engine,
    *,
    shards: int,
    cluster: bool = False,
    group: str = "settlement",
    allow_backlog: bool = False,
) -> Report:
    """Compare every account; with a backlog (and not ``allow_backlog``) return at once with ``checked`` False."""
    options = DrainOptions(group=group, trim=False)
    # The group must exist to have a backlog; creating it (``setup``) is what ``occ settle`` does too.
    async with Drain(redis_url, engine, shards=shards, cluster=cluster, options=options) as drain:
        backlog = await drain.backlog()
        if (backlog.lag or backlog.pending) and not allow_backlog:
            return Report(backlog, checked=False)
        marks = await stream_marks(drain.client, drain.streams)
        expected = ledger_totals(engine)
        live = await live_balances(drain.client)
        moved = marks != await stream_marks(drain.client, drain.streams)
    mismatches = compare(live, expected)
    return Report(backlog, True, len(live.keys() | expected.keys()), mismatches, moved)


def compare(live: dict[str, tuple[int, str]], expected: dict[str, tuple[int | None, int, int, str]]) -> list[Mismatch]:
    """Mismatches between live (account → balance, currency) and SQL (account → opening, Σ ledger, rows, currency)."""
    found = []
    for account in sorted(live.keys() | expected.keys()):
        balance, currency = live.get(account, (None, ""))
        opening, total, rows, sql_currency = expected.get(account, (None, 0, 0, ""))
        want = (opening or 0) + total
        note = ""
        if balance is None:
            note = "not in Redis"
        elif account not in expected:
            note = "not in the SQL store"
        if (balance or 0) != want or (balance is None and rows > 0):
            found.append(Mismatch(account, currency or sql_currency, balance, want, rows, note))
    return found


def ledger_totals(engine: Engine) -> dict[str, tuple[int | None, int, int, str]]:
    """account → (opening balance or None, Σ ledger amount, ledger rows, currency), in two grouped queries."""
    totals: dict[str, tuple[int | None, int, int, str]] = {}
    with reading(engine) as connection:
        for account, opening, currency in connection.execute(
            select(accounts.c.account, accounts.c.opening_balance, accounts.c.currency)
        ):
            totals[account] = (opening, 0, 0, currency)
        sums = select(ledger.c.account, func.sum(ledger.c.amount), func.count(), func.max(ledger.c.currency))
        for account, total, rows, currency in connection.execute(sums.group_by(ledger.c.account)):
            opening, _, _, known = totals.get(account, (None, 0, 0, currency))
            totals[account] = (opening, int(total or 0), int(rows), known)
    return totals


async def live_balances(client: RedisClient) -> dict[str, tuple[int, str]]:
    """account → (balance in micro-units, currency) of every account hash in Redis (every node of a cluster)."""
    names: list[str] = []
    async for raw in client.scan_iter(match=ACCOUNT_PATTERN, count=SCAN_COUNT, _type="hash"):
        key = _text(raw)
        if ":" not in key.partition(":acct:")[2]:
            names.append(key)
    balances: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(sorted(set(names)), PIPELINE_CHUNK):
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.hmget(key, "balance", "currency")
        for key, (balance, currency) in zip(chunk, await pipe.execute(), strict=True):
            if balance is not None:  # deleted between the scan and the read
                balances[key.partition(":acct:")[2]] = (int(balance), _text(currency or ""))
    return balances


async def stream_marks(client: RedisClient, streams: list[str]) -> list[str]:
    """The last entry id ever added to each stream (survives trimming): a stream that moved has a new one."""
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_stream(stream)
    return [
        "" if isinstance(info, Exception) else _text(info["last-generated-id"])
        for info in await pipe.execute(raise_on_error=False)
    ]


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

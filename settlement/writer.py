"""Write booked entries to the SQL store: one transaction per batch, idempotent on every row's id.

This is where :mod:`settlement.records` become SQL rows: :class:`BatchWriter` turns them into the driver's tuples
itself (the hot path), and :func:`row_dicts` into the dicts an SQLAlchemy ``insert()`` takes (billing's taxation
xDRs, a rerate's corrections, the accounts rows of ``account`` entries).

Every insert is ``INSERT … ON CONFLICT DO NOTHING``: a batch written twice (re-delivered after a crash between the
commit and the acknowledgement) changes nothing the second time. The one upsert, an ``account`` entry's settings
(:func:`settings_upsert`), changes a row only for an entry newer than the one its settings came from, so it too is
idempotent. A batch the database refuses for a reason of its
own data (a constraint, a value it cannot store) is retried entry by entry, so that one bad entry is set aside with
the database's reason and never blocks the others; a connection or lock failure is raised for the caller to retry.
"""

from __future__ import annotations

import fcntl
import operator
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Table, and_, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from settlement.records import AccountRow, LedgerRow, XdrRow
from settlement.store.database import ensure_periods
from settlement.store.money import Money, to_numeric
from settlement.store.schema import accounts, ledger, xdrs


class Booked(msgspec.Struct, frozen=True, gc=False):  # (no cycles: the collector need not track it)
    """What one stream entry books.

    Attributes:
        key: the entry's identity ``s<shard>:<entry id>`` (the id of its rows).
        ledger: its ledger rows: none (a session close changes no balance), one, or two (a top-up with prepaid tax:
            the top-up and the tax taken from it, ``settlement.entries``).
        xdrs: its xDR rows: none (a session charge is a ledger row only), one, or two (that top-up's PAYMENT and TAX).
        account: (account, currency, time_ms) to register the account on first sight.
        settings: for an ``account`` entry (created, updated), the ``accounts`` row it upserts
            (``settlement.entries.account_row``); None for money entries.
    """

    key: str
    ledger: tuple[LedgerRow, ...]
    xdrs: tuple[XdrRow, ...]
    account: tuple[str, str, int]
    settings: AccountRow | None = None


class Written(msgspec.Struct, frozen=True):
    """Outcome of :meth:`BatchWriter.write`.

    Attributes:
        ledger_rows, xdr_rows: rows offered (inserted, or already there from an earlier delivery).
        refused: key → the database's reason, for entries it would not store (to be dead-lettered).
    """

    ledger_rows: int
    xdr_rows: int
    refused: dict[str, str]


def row_dicts(records: Iterable[XdrRow | LedgerRow | AccountRow]) -> list[dict[str, Any]]:
    """The records as rows for ``connection.execute(insert(table), rows)`` (SQLAlchemy converts Money itself)."""
    return [msgspec.structs.asdict(record) for record in records]


class _Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` into one table, compiled once and run with the driver's executemany.

    Rows are records of ``record`` (or dicts with every column, without one); they are turned into tuples in the
    compiled statement's order (a record whose fields are the columns in that order: ``astuple``), and Money columns
    into what the dialect stores (SQLAlchemy's per-row bind processing costs more than the insert itself at tens
    of thousands of rows a second).
    """

    def __init__(self, table: Table, engine: Engine, record: type[msgspec.Struct] | None = None) -> None:
        dialect = engine.dialect
        module = postgresql if dialect.name == "postgresql" else sqlite
        compiled = module.insert(table).on_conflict_do_nothing().compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = compiled.positiontup is not None
        names = list(compiled.positiontup) if self.positional else list(compiled.params)
        self.names = names
        self.row = _row_getter(names, record)
        money = [names.index(c.name) for c in table.columns if isinstance(c.type, Money) and c.name in names]
        self.money = money if dialect.name != "sqlite" else []

    def __call__(self, connection: Connection, rows: Sequence[Any]) -> None:
        if not rows:
            return
        values = [self.row(r) for r in rows]
        if self.money:
            values = [_decimals(v, self.money) for v in values]
        if not self.positional:
            values = [dict(zip(self.names, v, strict=True)) for v in values]
        connection.exec_driver_sql(self.sql, values)


def _row_getter(names: list[str], record: type[msgspec.Struct] | None) -> Callable[[Any], tuple[Any, ...]]:
    if record is None:
        return operator.itemgetter(*names)
    if list(record.__struct_fields__) == names:
        return msgspec.structs.astuple
    return operator.attrgetter(*names)


def _decimals(row: tuple[Any, ...], money: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in money:
        if values[i] is not None:
            values[i] = to_numeric(values[i])
    return tuple(values)


MAX_REGISTERED = 1_000_000
"""Most account ids a writer remembers as registered (an account's row is written once; offering it again for every
entry cost more than the entry's own xDR)."""


class WriterTurn:
    """Settlement writers of one SQLite file take turns through an exclusive ``flock`` on ``<file>.writer-lock``.

    SQLite lets one writer at a time in; a writer that finds it busy sleeps in growing steps (up to 100 ms) before
    trying again, so with several workers the file sat idle between batches. Waiting on the lock instead, the next
    writer starts the moment the last one is done. The kernel drops the lock of a process that dies. Other writers
    (billing, a rerate) do not take turns here: SQLite's own busy wait still orders them. A no-op on PostgreSQL.
    """

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._path = f"{database}.writer-lock" if database and database != ":memory:" else None
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._path is None:
            return
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class BatchWriter:
    """Writes batches of :class:`Booked` to the store (create one per process; it caches known periods)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._accounts = _Insert(accounts, engine, AccountRow)
        self._ledger = _Insert(ledger, engine, LedgerRow)
        self._xdrs = _Insert(xdrs, engine, XdrRow)
        self._settings = settings_upsert(engine)
        self._periods: set[str] = set()
        self._registered: set[str] = set()  # accounts whose row this writer saw committed: not offered again
        self._turn = WriterTurn(engine)

    def write(self, batch: Sequence[Booked]) -> Written:
        """Store ``batch`` in one transaction (or entry by entry if the database refuses the batch)."""
        if not batch:
            return Written(0, 0, {})
        ensure_periods(self.engine, {x.period for b in batch for x in b.xdrs}, self._periods)
        with self._turn:
            return self._write_batch(batch)

    def _write_batch(self, batch: Sequence[Booked]) -> Written:
        try:
            with self.engine.begin() as connection:
                *counts, accounts = self._write(connection, batch)
            self._remember(accounts)
            return Written(*counts, {})
        except DBAPIError as error:
            if _transient(error):
                raise
        refused: dict[str, str] = {}
        ledger_rows = xdr_rows = 0
        for booked in batch:
            try:
                with self.engine.begin() as connection:
                    one_ledger, one_xdr, accounts = self._write(connection, [booked])
                self._remember(accounts)
            except DBAPIError as error:
                if _transient(error):
                    raise
                refused[booked.key] = f"the store refused it: {str(error.orig)[:300]}"
                continue
            ledger_rows += one_ledger
            xdr_rows += one_xdr
        return Written(ledger_rows, xdr_rows, refused)

    def _remember(self, accounts: Iterable[str]) -> None:
        if len(self._registered) > MAX_REGISTERED:  # bounded memory: forget, and offer each account once more
            self._registered.clear()
        self._registered.update(accounts)

    def _write(self, connection: Connection, batch: Sequence[Booked]) -> tuple[int, int, Iterable[str]]:
        newest: dict[str, AccountRow] = {}  # one row per account (PostgreSQL updates a row once per statement)
        for row in (b.settings for b in batch if b.settings is not None):
            known = newest.get(row.account)
            if known is None or _position(known) < _position(row):
                newest[row.account] = row
        if newest:  # first: a new account's row then starts at its creation, not at a money entry of the batch
            connection.execute(self._settings, row_dicts(newest.values()))
        seen: dict[str, AccountRow] = {}
        registered = self._registered
        for b in batch:
            account, currency, time_ms = b.account
            if account not in seen and account not in registered and account not in newest:
                seen[account] = AccountRow(account=account, currency=currency, first_seen_ms=time_ms)
        self._accounts(connection, list(seen.values()))
        ledger_rows = [row for b in batch for row in b.ledger]
        xdr_rows = [row for b in batch for row in b.xdrs]
        self._ledger(connection, ledger_rows)
        self._xdrs(connection, xdr_rows)
        return len(ledger_rows), len(xdr_rows), seen.keys() | newest.keys()


SETTINGS = ("plan", "credit_limit", "status", "prepaid_tax_ppm", "prepaid_tax_ledger", "prepaid_tax_code",
            "created_ms", "settings_ms", "settings_seq")  # fmt: skip
"""The ``accounts`` columns an ``account`` entry sets (the fields of :class:`AccountRow` after ``first_seen_ms``)."""


def _position(row: AccountRow) -> tuple[int, int]:
    return row.settings_ms or 0, row.settings_seq or 0


def settings_upsert(engine: Engine) -> Any:
    """Insert an account's row from an ``account`` entry, or update its settings if the entry is newer (by stream
    position) than the one they came from: idempotent, and the newest entry wins whatever order workers book in.
    Currency, opening balance and first sight of an existing row never change."""
    module = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = module.insert(accounts)
    new, old = statement.excluded, accounts.c
    newer = or_(
        old.settings_ms.is_(None),
        old.settings_ms < new.settings_ms,
        and_(old.settings_ms == new.settings_ms, old.settings_seq < new.settings_seq),
    )
    return statement.on_conflict_do_update(
        index_elements=[old.account], set_={name: new[name] for name in SETTINGS}, where=newer
    )


def _transient(error: DBAPIError) -> bool:
    """A failure of the connection, a lock or the set-up (OperationalError: "database is locked", a lost server,
    a missing table), not of the data: the same batch may succeed later, so it is retried, never dead-lettered."""
    return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)

"""Write booked entries to the SQL store: one transaction per batch, idempotent on every row's id.

This is where :mod:`settlement.records` become SQL rows: :class:`BatchWriter` turns them into the driver's tuples
itself (the hot path), and :func:`row_dicts` into the dicts an SQLAlchemy ``insert()`` takes (billing's taxation
xDRs, a rerate's corrections).

Every insert is ``INSERT … ON CONFLICT DO NOTHING``: a batch written twice (re-delivered after a crash between the
commit and the acknowledgement) changes nothing the second time. A batch the database refuses for a reason of its
own data (a constraint, a value it cannot store) is retried entry by entry, so that one bad entry is set aside with
the database's reason and never blocks the others; a connection or lock failure is raised for the caller to retry.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from settlement.records import LedgerRow, XdrRow
from settlement.store.database import ensure_periods
from settlement.store.money import Money, to_numeric
from settlement.store.schema import accounts, ledger, xdrs


class Booked(msgspec.Struct, frozen=True):
    """What one stream entry books.

    Attributes:
        key: the entry's identity ``s<shard>:<entry id>`` (the id of its rows).
        ledger: its ledger rows: none (a session close changes no balance), one, or two (a top-up with prepaid tax:
            the top-up and the tax taken from it, ``settlement.entries``).
        xdrs: its xDR rows: none (a session charge is a ledger row only), one, or two (that top-up's PAYMENT and TAX).
        account: (account, currency, time_ms) to register the account on first sight.
    """

    key: str
    ledger: tuple[LedgerRow, ...]
    xdrs: tuple[XdrRow, ...]
    account: tuple[str, str, int]


class Written(msgspec.Struct, frozen=True):
    """Outcome of :meth:`BatchWriter.write`.

    Attributes:
        ledger_rows, xdr_rows: rows offered (inserted, or already there from an earlier delivery).
        refused: key → the database's reason, for entries it would not store (to be dead-lettered).
    """

    ledger_rows: int
    xdr_rows: int
    refused: dict[str, str]


def row_dicts(records: Iterable[XdrRow | LedgerRow]) -> list[dict[str, Any]]:
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


class BatchWriter:
    """Writes batches of :class:`Booked` to the store (create one per process; it caches known periods)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._accounts = _Insert(accounts, engine)
        self._ledger = _Insert(ledger, engine, LedgerRow)
        self._xdrs = _Insert(xdrs, engine, XdrRow)
        self._periods: set[str] = set()

    def write(self, batch: Sequence[Booked]) -> Written:
        """Store ``batch`` in one transaction (or entry by entry if the database refuses the batch)."""
        if not batch:
            return Written(0, 0, {})
        ensure_periods(self.engine, {x.period for b in batch for x in b.xdrs}, self._periods)
        try:
            with self.engine.begin() as connection:
                counts = self._write(connection, batch)
            return Written(*counts, {})
        except DBAPIError as error:
            if _transient(error):
                raise
        refused: dict[str, str] = {}
        ledger_rows = xdr_rows = 0
        for booked in batch:
            try:
                with self.engine.begin() as connection:
                    one_ledger, one_xdr = self._write(connection, [booked])
            except DBAPIError as error:
                if _transient(error):
                    raise
                refused[booked.key] = f"the store refused it: {str(error.orig)[:300]}"
                continue
            ledger_rows += one_ledger
            xdr_rows += one_xdr
        return Written(ledger_rows, xdr_rows, refused)

    def _write(self, connection: Connection, batch: Sequence[Booked]) -> tuple[int, int]:
        seen: dict[str, dict[str, Any]] = {}
        for b in batch:
            account, currency, time_ms = b.account
            if account not in seen:
                seen[account] = {
                    "account": account,
                    "currency": currency,
                    "opening_balance": 0,
                    "first_seen_ms": time_ms,
                }
        self._accounts(connection, list(seen.values()))
        ledger_rows = [row for b in batch for row in b.ledger]
        xdr_rows = [row for b in batch for row in b.xdrs]
        self._ledger(connection, ledger_rows)
        self._xdrs(connection, xdr_rows)
        return len(ledger_rows), len(xdr_rows)


def _transient(error: DBAPIError) -> bool:
    """A failure of the connection, a lock or the set-up (OperationalError: "database is locked", a lost server,
    a missing table), not of the data: the same batch may succeed later, so it is retried, never dead-lettered."""
    return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)

"""Connections to the settlement store: a SQLite file by default, PostgreSQL when a URL says so.

::

    engine = open_store("sqlite:///data/occ.sqlite3")      # or postgresql://user@127.0.0.1/occ
    upgrade(engine)                                        # migrations; every command that writes does it on start

SQLite runs in WAL mode (readers never block the writer) with ``synchronous=NORMAL`` (a committed transaction
survives a process crash; a power loss may lose the last ones, never corrupt the file), and every transaction
starts ``BEGIN IMMEDIATE`` so that two writers queue on the lock (``busy_timeout``) instead of failing half-way;
connections from :func:`reading` begin DEFERRED instead, so reports never hold the write lock.
PostgreSQL goes through psycopg 3. ``xdrs`` is partitioned by month there: :func:`ensure_periods` creates a month's
partition before the first row of that month is written.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

SQLITE_FILE = "occ.sqlite3"
BUSY_TIMEOUT_MS = 30_000
PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
READ_ONLY = "occ_read_only"


class StoreError(RuntimeError):
    """The store cannot be opened or used as configured; the message says what to do."""


def default_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the server's data directory."""
    return f"sqlite:///{Path(data_dir).resolve() / SQLITE_FILE}"


def open_store(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql://…``); connections open lazily.

    A SQLite file that does not exist is created (with its directory) when ``create``; otherwise :class:`StoreError`
    names the path: a command that only reads the books must not answer from a new, empty store.
    """
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not create and path.name != ":memory:" and not path.is_file():
            raise StoreError(f"no settlement store at {path}: check --db-url / --data-dir (occ settle creates it)")
        if path.name and not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _sqlite_pragmas(engine)
        return engine
    if url.startswith("postgresql+psycopg://"):
        return create_engine(url, pool_pre_ping=True)
    raise StoreError(f"db_url must be sqlite:///PATH or postgresql://…, got {url!r}")


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # the driver's own implicit BEGIN would be DEFERRED
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: the xDR indexes stay in memory while draining
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only. On SQLite its transactions begin DEFERRED: in WAL mode a reader then never holds
    the write lock, so a long report does not stall the drain (``BEGIN IMMEDIATE``, every writer's, would)."""
    with engine.connect() as connection:
        connection.execution_options(**{READ_ONLY: True})
        yield connection


def ensure_periods(engine: Engine, periods: Iterable[str], known: set[str]) -> None:
    """Make sure ``xdrs`` can take rows of these months (PostgreSQL: a LIST partition per month; SQLite: nothing).

    ``known`` caches the periods already checked by this process and is updated. Safe under concurrent workers.
    """
    missing = {p for p in periods if p not in known}
    if not missing:
        return
    if engine.dialect.name == "postgresql":
        for period in sorted(missing):
            if not PERIOD.match(period):
                raise ValueError(f"period must be YYYY-MM, got {period!r}")
            name = "xdrs_p" + period.replace("-", "_")
            statement = f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF xdrs FOR VALUES IN ('{period}')"
            try:
                with engine.begin() as connection:
                    connection.execute(text(statement))
            except DBAPIError:
                # Another worker created it at the same moment; anything else fails the insert loudly next.
                with engine.connect() as connection:
                    exists = connection.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar()
                if not exists:
                    raise
    known.update(missing)

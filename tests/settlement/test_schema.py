"""The migrations build exactly the schema the code uses, on SQLite and PostgreSQL; Money keeps every micro-unit."""

from __future__ import annotations

import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select

from settlement.store.database import open_store, reading
from settlement.store.migrate import current, head, upgrade
from settlement.store.schema import accounts, metadata


def test_migrations_match_the_schema_and_rerun_as_a_no_op(db_url):
    engine = open_store(db_url)
    assert upgrade(engine) == ("", head())
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    assert upgrade(engine) == (head(), head())
    assert current(engine) == head()
    engine.dispose()


@pytest.mark.parametrize("micros", [0, 1, -1, 300_834, 9_007_199_254_740_991, -9_007_199_254_740_991])
def test_money_round_trips_exactly(db_url, micros):
    engine = open_store(db_url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(insert(accounts), {"account": "a", "currency": "EUR", "opening_balance": micros,
                                              "first_seen_ms": 0})  # fmt: skip
        assert connection.execute(select(accounts.c.opening_balance)).scalar() == micros
    engine.dispose()


def test_money_refuses_floats(db_url):
    engine = open_store(db_url)
    upgrade(engine)
    with pytest.raises(Exception, match="int micro-units"), engine.begin() as connection:
        connection.execute(insert(accounts), {"account": "a", "currency": "EUR", "opening_balance": 0.1,
                                              "first_seen_ms": 0})  # fmt: skip
    engine.dispose()


def test_a_reader_does_not_wait_for_a_writer_on_sqlite(tmp_path):
    """Writers begin IMMEDIATE (they queue on the lock); a reading() connection begins DEFERRED and, in WAL mode,
    reads the last committed state at once while a writer holds the lock."""
    engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    upgrade(engine)
    with engine.begin() as writer:
        writer.execute(insert(accounts), {"account": "a", "currency": "EUR", "opening_balance": 5,
                                          "first_seen_ms": 0})  # fmt: skip
        started = time.monotonic()
        with reading(engine) as reader:
            assert reader.execute(select(accounts.c.account)).all() == []  # not committed yet
        assert time.monotonic() - started < 1  # the busy timeout is 30 s
    engine.dispose()

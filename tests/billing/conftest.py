"""Billing fixtures: ``store``, a migrated settlement store (SQLite, then PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from settlement.store.database import open_store
from settlement.store.migrate import upgrade


@pytest.fixture
def store(db_url: str) -> Iterator[Engine]:
    engine = open_store(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()

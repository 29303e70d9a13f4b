"""Shared pytest fixtures: real redis-server processes on free loopback ports (no fakes), stopped after use.

- ``redis_server`` / ``redis_url``: a fresh single server per test, in the test's ``tmp_path`` (no AOF).
- ``redis_cluster_nodes`` / ``redis_cluster_url``: one 3-master cluster for the whole session, flushed around each
  test; connect with ``occ.store.client.connect(redis_cluster_url, cluster=True)``.
- ``postgres_server``: a private PostgreSQL for the session (``tests/postgres.py``); ``db_url``: an empty settlement
  store, parametrised over SQLite and PostgreSQL; ``store``: that store, migrated.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres import PostgresServer
from redis_cluster import cluster_url, start_redis_cluster
from sqlalchemy import Engine

from occ.store.process import RedisProcess, start_redis_server
from settlement.store.database import open_store
from settlement.store.migrate import upgrade


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A fresh redis-server for this test only."""
    server = start_redis_server(tmp_path / "redis-server")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """``redis://127.0.0.1:<port>/0`` of a fresh, empty redis-server stopped after the test."""
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisProcess]]:
    """The session's 3-master Redis Cluster (its processes); prefer ``redis_cluster_nodes``, which flushes it."""
    nodes, _ = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"), masters=3)
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _flush(nodes: list[RedisProcess]) -> None:
    for node in nodes:
        node.command("FLUSHALL")


@pytest.fixture
def redis_cluster_nodes(redis_cluster_processes: list[RedisProcess]) -> Iterator[list[tuple[str, int]]]:
    """Startup nodes ``(host, port)`` of the session's cluster, empty at the start of the test."""
    _flush(redis_cluster_processes)
    yield [("127.0.0.1", node.port) for node in redis_cluster_processes]
    _flush(redis_cluster_processes)


@pytest.fixture
def redis_cluster_url(redis_cluster_nodes: list[tuple[str, int]]) -> str:
    """The cluster's startup nodes as a ``redis_url`` (``redis://127.0.0.1:p1,redis://127.0.0.1:p2,…``)."""
    return cluster_url(redis_cluster_nodes)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL for the whole run (started on first use, a second or two)."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty settlement store: a SQLite file, then a fresh database on the private PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'occ.sqlite3'}"
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def store(db_url: str) -> Iterator[Engine]:
    """An empty settlement store migrated to the newest schema (SQLite, then PostgreSQL)."""
    engine = open_store(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()

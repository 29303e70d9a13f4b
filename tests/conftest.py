"""Shared pytest fixtures: real redis-server processes on free loopback ports (no fakes), stopped after use.

- ``redis_server`` / ``redis_url``: a fresh single server per test, in the test's ``tmp_path`` (no AOF).
- ``redis_cluster_nodes`` / ``redis_cluster_url``: one 3-master cluster for the whole session, flushed around each
  test; connect with ``occ.store.client.connect(redis_cluster_url, cluster=True)``.
- ``postgres_server``: a private PostgreSQL for the session (``tests/postgres.py``); ``db_url``: a settlement store of
  the test's own, parametrised over SQLite and PostgreSQL, empty unless the test also uses ``store``; ``store``: that
  store, migrated to the newest schema (copied from a store the session migrated once: a file copy on SQLite, CREATE
  DATABASE … TEMPLATE on PostgreSQL, instead of running every migration again for each test).

"Session" is per process: under pytest-xdist every worker has its own cluster, PostgreSQL and templates.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
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


def _migrated(url: str) -> None:
    engine = open_store(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated to the newest schema, once per session, with its write-ahead log checkpointed into
    the file: a copy of the file is a complete migrated store."""
    path = tmp_path_factory.mktemp("store-template") / "occ.sqlite3"
    _migrated(f"sqlite:///{path}")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, "the template's write-ahead log could not be checkpointed"
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """The name of a PostgreSQL database migrated to the newest schema, once per session (no one stays connected:
    CREATE DATABASE … TEMPLATE needs it idle)."""
    url = postgres_server.new_database()
    _migrated(url)
    return url.rsplit("/", 1)[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A settlement store of this test's own: a SQLite file, then a database on the private PostgreSQL. Empty, or
    already migrated when the test also uses ``store`` (the same store, copied from the session's template)."""
    migrated = "store" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "occ.sqlite3"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database(template=request.getfixturevalue("postgres_template") if migrated else "")


@pytest.fixture
def store(db_url: str) -> Iterator[Engine]:
    """The test's settlement store (``db_url``), migrated to the newest schema (SQLite, then PostgreSQL)."""
    engine = open_store(db_url)
    upgrade(engine)  # a no-op on the template's copy; a test's own ``store`` fixture may still start empty
    yield engine
    engine.dispose()

"""The private redis-server: embedded (AOF under the data dir), single test servers, and the client factory."""

from __future__ import annotations

import socket

import pytest

from occ.settings import Settings
from occ.store.client import connect
from occ.store.embedded import EmbeddedRedis
from occ.store.process import RedisStartError, start_redis_server


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_embedded_redis_serves_keeps_its_aof_and_is_gone_after_stop(tmp_path):
    embedded = EmbeddedRedis(tmp_path / "data")
    async with embedded:
        client = connect(embedded.url, pool_size=4)
        try:
            assert await client.set(b"acct", b"100")
            assert await client.get(b"acct") == b"100"
        finally:
            await client.aclose()
        port, pid = int(embedded.url.rsplit(":", 1)[1].split("/")[0]), embedded.pid
        assert (tmp_path / "data" / "redis" / "redis.pid").read_text().strip() == str(pid)
    aof = tmp_path / "data" / "redis" / "appendonlydir"
    assert any(path.name.endswith(".incr.aof") and b"acct" in path.read_bytes() for path in aof.iterdir())
    assert not port_open(port)
    assert not (tmp_path / "data" / "redis" / "redis.pid").exists()
    assert (tmp_path / "data" / "redis" / "redis.log").stat().st_size > 0
    with pytest.raises(RuntimeError, match="not running"):
        _ = embedded.url


async def test_embedded_data_survives_a_restart(tmp_path):
    with EmbeddedRedis(tmp_path, appendfsync="always") as first:
        client = connect(first.url)
        await client.hset(b"occ:{s001}:acct:a", mapping={b"balance": b"5000000"})
        await client.aclose()
    with EmbeddedRedis(tmp_path) as second:
        client = connect(second.url)
        try:
            assert await client.hget(b"occ:{s001}:acct:a", b"balance") == b"5000000"
            assert await client.config_get("appendfsync") == {"appendfsync": "everysec"}
        finally:
            await client.aclose()


def test_a_second_server_on_the_same_directory_is_refused(tmp_path):
    with EmbeddedRedis(tmp_path) as first, pytest.raises(RedisStartError, match=rf"pid {first.pid}\) is still running"):
        EmbeddedRedis(tmp_path).start()


def test_missing_redis_server_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisStartError, match=r"redis-server is not on PATH.*OCC_REDIS_URL"):
        EmbeddedRedis(tmp_path).start()


def test_a_failing_start_reports_the_tail_of_the_log(tmp_path):
    with pytest.raises(RedisStartError, match=r"exited with status 1 during start-up; its log ends:\n(.|\n)*no-such"):
        start_redis_server(tmp_path, extra_args=("--no-such-directive", "1"))


async def test_fixture_server_and_pooled_client_from_settings(redis_url):
    settings = Settings(redis_url=redis_url, redis_pool_size=2, redis_pool_timeout_s=0.5)
    client = connect(settings)
    try:
        pool = client.connection_pool
        assert pool.max_connections == 2 and pool.timeout == 0.5
        assert await client.ping() is True
        assert await client.dbsize() == 0
        await client.set("k", "v")
        assert await client.get("k") == b"v"  # bytes, not str
    finally:
        await client.aclose()


def test_connect_needs_a_url():
    with pytest.raises(ValueError, match="no Redis URL"):
        connect(Settings())

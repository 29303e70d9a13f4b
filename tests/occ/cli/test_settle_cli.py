"""`occ db` and `occ settle` from the command line: schema status, a drain with progress, clear errors."""

from __future__ import annotations

import asyncio

import redis
from click.testing import CliRunner

from benchmarks.settle_backlog import fill_backlog
from occ.cli import main
from occ.store.client import connect


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_db_upgrade_then_status(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    assert run("db", "status", "--db-url", url).exit_code == 1  # empty: behind the newest revision
    upgraded = run("db", "upgrade", "--db-url", url)
    assert upgraded.exit_code == 0 and "empty →" in upgraded.output
    status = run("db", "status", "--db-url", url)
    assert status.exit_code == 0 and "(newest " in status.output


def test_a_bad_store_url_is_named():
    result = run("db", "upgrade", "--db-url", "mysql://x")
    assert result.exit_code == 2 and "db_url must start with sqlite:///" in result.output


def test_settle_without_a_redis_says_how_to_get_one(tmp_path):
    result = run("settle", "--once", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "no embedded Redis runs under" in result.output and "OCC_REDIS_URL" in result.output


async def fill(redis_url: str):
    client = connect(redis_url)
    try:
        return await fill_backlog(client, shards=8, accounts=3, calls=10)
    finally:
        await client.aclose()


def test_settle_once_drains_and_reports(redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("OCC_SHARDS", "8")
    backlog = asyncio.run(fill(redis_url))
    db_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    result = CliRunner().invoke(main, ["settle", "--once", "--redis-url", redis_url, "--db-url", db_url])
    assert result.exit_code == 0, result.output
    assert f"{backlog.entries:,} entries to settle" in result.output
    assert f"{backlog.entries:,} entries booked, 0 dead-lettered" in result.output


def test_dead_letters_are_listed_with_their_reason(redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("OCC_SHARDS", "8")
    asyncio.run(fill(redis_url))
    client = redis.Redis.from_url(redis_url)
    client.xadd("occ:{s003}:events", {"type": "bonus", "account": "acme"})
    client.close()
    db_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    settled = CliRunner().invoke(main, ["settle", "--once", "--redis-url", redis_url, "--db-url", db_url])
    assert settled.exit_code == 3  # something was dead-lettered
    listed = CliRunner().invoke(main, ["xdr", "dead-letters", "--redis-url", redis_url, "--db-url", db_url])
    assert listed.exit_code == 1
    assert "s003:" in listed.output and "bonus" in listed.output and "acme" in listed.output
    assert "type 'bonus' is not one settlement knows" in listed.output
    assert "1 dead letters" in listed.output

"""Reaching Redis safely: TLS with a CA and a client certificate (single node and Cluster), an ACL user limited to
``occ:*`` running every OCC process, and a clear error for wrong credentials or a failed TLS handshake.

Real redis-servers with trustme certificates made here (``tests/certs.py``); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest
from certs import make_certs, redis_tls_args
from click.testing import CliRunner, Result
from online_app import serving, session, settle_everything, voice
from redis.exceptions import NoPermissionError
from redis_cluster import cluster_url, start_redis_cluster
from served import Served, clean_environment

from occ.cli import main
from occ.store.acl import setuser_command
from occ.store.client import RedisAccessError, access_problem, check_access, connect, full_url
from occ.store.process import free_port, start_redis_server
from occ.store.urls import Access, with_access
from occ.v1 import admin_pb2 as admin


@pytest.fixture
def certs(tmp_path):
    return make_certs(tmp_path / "certs")


@pytest.fixture
def tls_server(tmp_path, certs):
    """A redis-server whose TLS port requires a client certificate signed by ``certs.ca``; yields the TLS port."""
    tls_port = free_port()
    server = start_redis_server(tmp_path / "tls-redis", extra_args=redis_tls_args(certs, tls_port))
    try:
        yield tls_port
    finally:
        server.stop()


def tls_settings(certs) -> dict[str, str]:
    return {"redis_tls_ca_file": str(certs.ca), "redis_tls_cert_file": str(certs.client_cert),
            "redis_tls_key_file": str(certs.client_key)}  # fmt: skip


async def occ_command(*args: str, redis_url: str, db_url: str, data_dir: Path) -> Result:
    """``occ ARGS`` against this Redis and store, in a thread (the command runs its own event loop)."""
    flags = ["--redis-url", redis_url, "--db-url", db_url, "--data-dir", str(data_dir)]
    return await asyncio.to_thread(CliRunner().invoke, main, [*args, *flags], catch_exceptions=False)


async def a_call(client, account: str = "alice") -> int:
    """An account with 10.00, a 60 s call on it; returns the balance after."""
    await client.account(account, balance=10_000_000)
    await client.charging.StartSession(session(f"{account}-call", 0, account, voice(requested=60)))
    end = await client.charging.EndSession(session(f"{account}-call", 1, account, voice(used=60)))
    return end.balance_micros


async def test_occ_serves_and_settles_over_tls_with_a_client_certificate(tls_server, certs, tmp_path, store):
    url = f"rediss://127.0.0.1:{tls_server}/0"
    async with serving(url, tmp_path, **tls_settings(certs)) as client:
        assert await a_call(client) == 9_700_000
        full = full_url(client.app.settings)
        assert "ssl_ca_certs=" in full and "ssl_keyfile=" in full
        await settle_everything(client, full, store)
    with socket.create_connection(("127.0.0.1", tls_server), timeout=2) as plain:  # the port speaks TLS only
        plain.sendall(b"PING\r\n")
        try:
            answer = plain.recv(64)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"+PONG")


@pytest.mark.parametrize(
    ("access", "expected"),
    [
        ("no client certificate", "TLS with Redis at rediss://127.0.0.1"),
        ("another CA", "TLS with Redis at rediss://127.0.0.1"),
    ],
)
async def test_a_failed_tls_handshake_is_one_clear_error(tls_server, certs, access, expected):
    if access == "no client certificate":
        url = with_access(f"rediss://127.0.0.1:{tls_server}/0", Access(tls_ca_file=str(certs.ca)))
    else:
        url = with_access(f"rediss://127.0.0.1:{tls_server}/0", Access(**{
            "tls_ca_file": str(certs.other_ca), "tls_cert_file": str(certs.client_cert),
            "tls_key_file": str(certs.client_key)}))  # fmt: skip
    client = connect(url, pool_size=1)
    try:
        with pytest.raises(RedisAccessError, match=expected) as raised:
            await check_access(client, url)
    finally:
        await client.aclose()
    assert "redis_tls_ca_file" in str(raised.value)


def test_a_tls_peer_that_resets_the_connection_is_a_tls_refusal_and_a_plain_reset_is_not():
    """Under TLS 1.3 a server that wants a client certificate checks it after the client's handshake is done, so the
    first read fails with its alert or, depending on timing, with the connection it reset: both are one TLS line."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    def reset() -> RedisConnectionError:  # as redis-py raises it: the socket's error as the cause
        error = RedisConnectionError("Error while reading from 127.0.0.1:6380 : (104, 'Connection reset by peer')")
        error.__cause__ = ConnectionResetError(104, "Connection reset by peer")
        return error

    problem = access_problem(reset(), "rediss://127.0.0.1:6380/0")
    assert problem is not None and problem.startswith("TLS with Redis at rediss://127.0.0.1:6380")
    assert "redis_tls_cert_file" in problem
    assert access_problem(reset(), "redis://127.0.0.1:6380/0") is None  # no TLS: a server going away, not access


async def test_occ_runs_on_a_redis_cluster_over_tls_as_its_acl_user(tmp_path, certs):
    nodes, addresses = start_redis_cluster(tmp_path / "tls-cluster", tls=certs)
    try:
        for node in nodes:
            node.command(*setuser_command("occ", "occpw"))
        url = cluster_url(addresses).replace("redis://", "rediss://")
        credentials = {"redis_username": "occ", "redis_password": "occpw"}
        async with serving(url, tmp_path, cluster=True, **tls_settings(certs), **credentials) as client:
            balances = [await a_call(client, account) for account in ("alice", "bob", "carol", "dave")]
            assert balances == [9_700_000] * 4
            shards = {client.app.store.keys(account).shard for account in ("alice", "bob", "carol", "dave")}
            entries = [len(await client.events(account)) for account in ("alice", "bob", "carol", "dave")]
            assert len(shards) == 4 and entries == [3, 3, 3, 3]  # top-up, charge, close: on each account's shard
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def acl_server(tmp_path):
    """A redis-server whose default user needs a password, with OCC's ACL user ``occ`` (password ``occpw``)."""
    server = start_redis_server(tmp_path / "acl-redis", password="adminpw")
    server.command(*setuser_command("occ", "occpw"))
    try:
        yield server
    finally:
        server.stop()


async def test_an_acl_user_limited_to_occ_keys_runs_serve_settle_and_reconcile(acl_server, tmp_path, db_url, store):
    url = f"redis://occ:occpw@127.0.0.1:{acl_server.port}/0"
    async with serving(url, tmp_path, sweep_interval_s=0.05) as client:
        assert await a_call(client) == 9_700_000
        await client.charging.StartSession(session("left-open", 0, "alice", voice(requested=60)))
        aborted = await client.admin.AbortSession(admin.AbortSessionRequest(account_id="alice", session_id="left-open"))
        assert aborted.aborted  # an abort publishes a notice on occ:notices
        topped = await client.admin.Transact(
            admin.TransactionRequest(
                account_id="alice",
                type=admin.TOP_UP,
                amount_micros=500_000,
                idempotency_key="k1",
                ledger_code=400000009,
            )
        )
        assert topped.balance_micros == 10_200_000  # fmt: skip
        settled = await occ_command("settle", "--once", "--claim-idle-s", "0", redis_url=url, db_url=db_url,
                                    data_dir=tmp_path)  # fmt: skip
        assert settled.exit_code == 0, settled.output
        reconciled = await occ_command("reconcile", redis_url=url, db_url=db_url, data_dir=tmp_path)
        assert reconciled.exit_code == 0 and "1 accounts, 0 mismatches" in reconciled.output, reconciled.output
        redis = client.app.redis
        for command in (("SET", "other", "1"), ("GET", "bank:secrets"), ("FLUSHALL",), ("CONFIG", "GET", "*"),
                        ("KEYS", "*"), ("SHUTDOWN",)):  # fmt: skip
            with pytest.raises(NoPermissionError):
                await redis.execute_command(*command)
        assert await redis.set("occ:acl-check", "1")
        assert await redis.execute_command("INCR", "occ:replication:mark") == 1  # min_replicas_acked's WAIT
        assert await redis.execute_command("WAIT", 0, 10) == 0


async def test_wrong_credentials_are_one_clear_error_naming_the_setting(acl_server):
    url = f"redis://occ:wrong@127.0.0.1:{acl_server.port}/0"
    client = connect(url, pool_size=1)
    try:
        with pytest.raises(RedisAccessError, match=r"refused the credentials .*redis_password") as raised:
            await check_access(client, url)
    finally:
        await client.aclose()
    assert "wrong" not in str(raised.value)  # the password never reaches a message


def test_occ_serve_refuses_to_start_with_wrong_credentials_in_one_line(acl_server, tmp_path):
    env = clean_environment() | {"OCC_REDIS_PASSWORD": "not-the-password", "OCC_REDIS_USERNAME": "occ"}
    args = [str(Path(sys.executable).with_name("occ")), "serve", "--port", str(free_port()), "--metrics-port", "0",
            "--data-dir", str(tmp_path / "data"), "--redis-url", f"redis://127.0.0.1:{acl_server.port}/0"]  # fmt: skip
    served = Served(args, tmp_path / "serve.log", env)
    assert served.process.wait(60) == 1
    (line,) = [record for record in served.records() if record["level"] == "ERROR"]
    assert line["msg"].startswith(f"cannot start: Redis at redis://127.0.0.1:{acl_server.port}/0 refused")
    assert "refused the credentials" in line["msg"]
    assert "not-the-password" not in served.text() and "Traceback" not in served.text()

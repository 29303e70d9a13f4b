"""The embedded Redis requires a generated password: kept in the data dir (mode 0600), reused on restart, never on a
command line, and handed to the settlement worker and to the commands that find the server under the data dir."""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis.exceptions import AuthenticationError, ResponseError
from served import Served, clean_environment

from occ.cli import main
from occ.store.client import connect
from occ.store.embedded import EmbeddedRedis, running_url
from occ.store.process import free_port

REPO = Path(__file__).resolve().parents[3]


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


async def test_the_embedded_redis_requires_its_password_kept_0600_and_reused(tmp_path):
    password_file = tmp_path / "redis" / "password"
    with EmbeddedRedis(tmp_path) as first:
        secret = password_file.read_text().strip()
        assert len(secret) == 64 and int(secret, 16) >= 0
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert first.url == f"redis://:{secret}@127.0.0.1:{first.url.rsplit(':', 1)[1]}"
        assert running_url(tmp_path) == first.url  # what occ settle / occ reconcile use
        assert secret not in cmdline(first.pid) and secret not in (tmp_path / "redis" / "redis.url").read_text()
        anonymous = connect(first.url.replace(f":{secret}@", ""))
        try:
            with pytest.raises((AuthenticationError, ResponseError), match=r"NOAUTH|authenticated"):
                await anonymous.set("occ:x", "1")
        finally:
            await anonymous.aclose()
        client = connect(first.url)
        await client.set("occ:x", "kept")
        await client.aclose()
    with EmbeddedRedis(tmp_path) as second:
        assert password_file.read_text().strip() == secret and f":{secret}@" in second.url
        client = connect(second.url)
        try:
            assert await client.get("occ:x") == b"kept"
        finally:
            await client.aclose()


async def test_the_keeper_starts_a_killed_embedded_redis_again_with_the_same_password(tmp_path):
    with EmbeddedRedis(tmp_path, keep_alive=True, appendfsync="always") as embedded:  # always: the AOF has occ:x
        url, first = embedded.url, embedded.pid
        secret = (tmp_path / "redis" / "password").read_text().strip()
        client = connect(url)
        await client.set("occ:x", "kept")
        await client.aclose()
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while embedded.restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert embedded.restarts == 1 and embedded.pid != first
        assert embedded.url == url and running_url(tmp_path) == url  # the same port and password: clients reconnect
        assert secret not in cmdline(embedded.pid)
        anonymous = connect(url.replace(f":{secret}@", ""))
        try:
            with pytest.raises((AuthenticationError, ResponseError), match=r"NOAUTH|authenticated"):
                await anonymous.get("occ:x")
        finally:
            await anonymous.aclose()
        client = connect(url)
        try:
            assert await client.get("occ:x") == b"kept"
        finally:
            await client.aclose()


def test_a_password_file_others_can_read_is_made_0600_and_kept(tmp_path, caplog):
    directory = tmp_path / "redis"
    directory.mkdir()
    (directory / "password").write_text("abc123\n")
    os.chmod(directory / "password", 0o644)
    with EmbeddedRedis(tmp_path) as embedded:
        assert ":abc123@" in embedded.url
    assert stat.S_IMODE((directory / "password").stat().st_mode) == 0o600
    assert "readable by others" in caplog.text


@pytest.mark.timeout(180)
def test_occ_serve_gives_the_password_to_its_settlement_worker_and_occ_reconcile_finds_it(tmp_path):
    data_dir = tmp_path / "data"
    env = clean_environment() | {"OCC_SETTLE": "true"}
    args = [str(Path(sys.executable).with_name("occ")), "serve", "--port", str(free_port()), "--metrics-port", "0",
            "--data-dir", str(data_dir), "--tariff", str(REPO / "examples" / "tariff"), "--demo"]  # fmt: skip
    served = Served(args, tmp_path / "serve.log", env)
    try:
        served.wait_for("listening", lambda: bool(served.messages("listening")), timeout_s=90)
        secret = (data_dir / "redis" / "password").read_text().strip()
        deadline, result = time.monotonic() + 60, None
        while time.monotonic() < deadline:  # the worker books the demo account's opening top-up
            result = CliRunner().invoke(main, ["reconcile", "--data-dir", str(data_dir)], env={"OCC_LOG_JSON": "false"})
            if result.exit_code == 0:
                break
            time.sleep(0.5)
        assert result is not None and result.exit_code == 0, result.output if result else "no run"
        assert "1 accounts, 0 mismatches" in result.output
        lines = [cmdline(pid) for pid in children(served.process.pid)]
        assert any(" settle " in line for line in lines) and any("redis-server" in line for line in lines), lines
        assert not any(secret in line for line in lines)
    finally:
        assert served.stop() == 0
    assert secret not in served.text()

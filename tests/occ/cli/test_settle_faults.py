"""``occ settle`` on operator mistakes and outages: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis

from occ.store.process import free_port, start_redis_server

OCC = str(Path(sys.executable).with_name("occ"))


def settle(redis_url: str, tmp_path: Path, *args: str) -> list[str]:
    return [OCC, "settle", "--redis-url", redis_url, "--db-url", f"sqlite:///{tmp_path / 'occ.sqlite3'}", *args]


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("OCC_")}, "OCC_SHARDS": "8",
            "OCC_LOG_JSON": "false"}  # fmt: skip


def assert_one_clear_line(stderr: str, *words: str) -> None:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_nothing_listening_is_one_clear_line(tmp_path):
    port = free_port()
    for mode in (["--once"], []):
        done = subprocess.run(settle(f"redis://127.0.0.1:{port}/0", tmp_path, *mode), env=env(),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert_one_clear_line(done.stderr, f"Redis at 127.0.0.1:{port}", "cannot be reached")


def test_sigterm_during_a_redis_outage_is_one_clear_line(tmp_path):
    redis = start_redis_server(tmp_path / "redis")
    worker = subprocess.Popen(settle(redis.url, tmp_path), env=env(), stderr=subprocess.PIPE, text=True)
    try:
        client = Redis.from_url(redis.url, decode_responses=True)
        deadline = time.monotonic() + 30
        while not any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in client.client_list()):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never started draining"
            time.sleep(0.05)
        client.close()
        redis.process.kill()
        redis.process.wait()
        time.sleep(1.0)  # the worker notices and retries with backoff
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
    finally:
        worker.kill()
        redis.stop()
    assert worker.returncode == 1, stderr
    assert "retrying" in stderr  # it did meet the outage
    assert_one_clear_line(stderr, f"Redis at 127.0.0.1:{redis.port}", "stopped")


def test_every_command_that_reads_redis_says_so_in_one_line_when_it_cannot(tmp_path):
    """Not only ``occ settle``: ``occ reconcile`` and ``occ xdr dead-letters`` (nothing listening) too."""
    db_url = f"sqlite:///{tmp_path / 'occ.sqlite3'}"
    assert subprocess.run([OCC, "db", "upgrade", "--db-url", db_url], env=env(), capture_output=True).returncode == 0
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    for command in (["reconcile"], ["xdr", "dead-letters"]):
        done = subprocess.run([OCC, *command, "--redis-url", unreachable, "--db-url", db_url], env=env(),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 1, (command, done.stderr)
        assert_one_clear_line(done.stderr, "Redis cannot be reached", "Connect call failed")

"""Test helpers for Redis replication and Sentinel: a primary with replicas, and three sentinels watching them, all
private redis-servers on loopback (stop them with :meth:`SentinelSet.stop`)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from occ.store.process import HOST, RedisProcess, RedisStartError, free_port, redis_server_path, start_redis_server

SERVICE = "occ-main"
_POLL_S = 0.05
# A replica syncs at once (not after the default 5 s), and a stopping primary does not wait for its replicas.
_FAST = ("--repl-diskless-sync-delay", "0", "--shutdown-timeout", "0")


def start_replicated(
    directory: Path, *, replicas: int = 1, timeout_s: float = 30.0
) -> tuple[RedisProcess, list[RedisProcess]]:
    """A primary and ``replicas`` replicas of it, every replica's link up and acknowledging."""
    primary = start_redis_server(directory / "primary", appendonly=True, extra_args=_FAST)
    started: list[RedisProcess] = []
    try:
        for index in range(replicas):
            started.append(start_redis_server(directory / f"replica{index}",
                                              extra_args=(*_FAST, "--replicaof", HOST, str(primary.port))))  # fmt: skip
        for replica in started:
            _wait(lambda r=replica: b"master_link_status:up" in r.command("INFO", "replication"), timeout_s, "link up")
        _wait(lambda: primary.command("WAIT", str(replicas), "1000") == str(replicas).encode(), timeout_s, "acks")
    except BaseException:
        for process in (primary, *started):
            process.stop()
        raise
    return primary, started


@dataclass
class SentinelSet:
    """A primary, its replicas and three sentinels (quorum 2) monitoring :data:`SERVICE`."""

    primary: RedisProcess
    replicas: list[RedisProcess]
    sentinels: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"{HOST}:{s.port}" for s in self.sentinels) + f"/{SERVICE}"

    def primary_port(self) -> int:
        """The primary's port as the first sentinel that answers reports it."""
        for sentinel in self.sentinels:
            with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError, ValueError):
                answer = subprocess.run(
                    ["redis-cli", "-p", str(sentinel.port), "SENTINEL", "get-master-addr-by-name", SERVICE],
                    capture_output=True, text=True, timeout=5, check=True,
                )  # fmt: skip
                return int(answer.stdout.split()[1])
        raise OSError("no sentinel answers")

    def stop(self) -> None:
        for process in (*self.sentinels, self.primary, *self.replicas):
            process.stop(timeout_s=2.0)


def start_sentinel_set(
    directory: Path, *, replicas: int = 2, down_after_ms: int = 1000, timeout_s: float = 40.0
) -> SentinelSet:
    """Start the set and wait until every sentinel knows the replicas and the two other sentinels (a failover needs
    them: they learn of each other through the primary every 2 s)."""
    primary, started = start_replicated(directory, replicas=replicas, timeout_s=timeout_s)
    found = SentinelSet(primary, started)
    try:
        for index in range(3):
            found.sentinels.append(_start_sentinel(directory / f"sentinel{index}", primary.port, down_after_ms))
        for sentinel in found.sentinels:
            _wait(lambda s=sentinel: s.command("SENTINEL", "REPLICAS", SERVICE) == str(replicas).encode()
                  and s.command("SENTINEL", "SENTINELS", SERVICE) == b"2", timeout_s, "sentinels agree")  # fmt: skip
    except BaseException:
        found.stop()
        raise
    return found


def _start_sentinel(directory: Path, primary_port: int, down_after_ms: int) -> RedisProcess:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind {HOST}\ndir {directory}\nlogfile {directory / 'redis.log'}\n"
        f"sentinel monitor {SERVICE} {HOST} {primary_port} 2\n"
        f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
        f"sentinel failover-timeout {SERVICE} 10000\nsentinel parallel-syncs {SERVICE} 1\n"
    )
    args = [redis_server_path(), str(config), "--sentinel"]
    setpriv = shutil.which("setpriv")
    if setpriv:
        args = [setpriv, "--pdeathsig", "TERM", "--", *args]
    with (directory / "redis.log").open("ab") as output:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                   start_new_session=True)  # fmt: skip
    sentinel = RedisProcess(process, port, directory)
    sentinel.wait_ready(10.0)
    return sentinel


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError):
            if predicate():
                return
        if time.monotonic() > deadline:
            raise RedisStartError(f"{what}: not within {timeout_s} s")
        time.sleep(_POLL_S)

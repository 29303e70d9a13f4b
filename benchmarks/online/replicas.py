"""A Redis of the benchmark's own for ``occ serve --redis-url``: a primary (AOF with the chosen ``appendfsync``) and
replicas of it on loopback, for measuring what ``appendfsync always`` and ``min_replicas_acked`` (``WAIT``) cost.

The servers are children of the harness, not of ``occ serve``: the server CPU the report gives per request then
leaves Redis out (it includes the embedded Redis in the default set-up).
"""

from __future__ import annotations

import time
from pathlib import Path

from occ.store.process import HOST, RedisProcess, start_redis_server

LINK_TIMEOUT_S = 30.0


def start(directory: Path, *, replicas: int, appendfsync: str) -> list[RedisProcess]:
    """The primary first, then ``replicas`` replicas whose links are up; stop them all with :func:`stop`."""
    primary = start_redis_server(directory / "primary", appendonly=True, appendfsync=appendfsync,
                                 extra_args=("--repl-diskless-sync-delay", "0"))  # fmt: skip
    servers = [primary]
    try:
        for index in range(replicas):
            servers.append(start_redis_server(directory / f"replica{index}", appendonly=True, appendfsync=appendfsync,
                                              extra_args=("--replicaof", HOST, str(primary.port))))  # fmt: skip
        deadline = time.monotonic() + LINK_TIMEOUT_S
        while replicas and primary.command("WAIT", str(replicas), "1000") != str(replicas).encode():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{replicas} replica(s) not in sync within {LINK_TIMEOUT_S:g} s")
    except BaseException:
        stop(servers)
        raise
    return servers


def stop(servers: list[RedisProcess]) -> None:
    for server in reversed(servers):
        server.stop(timeout_s=5.0)

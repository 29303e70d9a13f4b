"""Test helpers for Redis Cluster: start a 3-master cluster of private redis-servers on loopback, and name it.

Moved out of the product (``occ.store.process``, ``occ.store.client``), which never starts a cluster: only the tests
(``tests/conftest.py``) do.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

from certs import Certs, redis_tls_args

from occ.store.process import HOST, RedisProcess, RedisStartError, free_port, start_redis_server

REDIS_CLI = "redis-cli"
_POLL_S = 0.05


def cluster_url(nodes: list[tuple[str, int]]) -> str:
    """The ``redis_url`` for cluster startup nodes given as ``(host, port)``."""
    return ",".join(f"redis://{host}:{port}" for host, port in nodes)


def start_redis_cluster(
    directory: Path, masters: int = 3, *, timeout_s: float = 30.0, tls: Certs | None = None
) -> tuple[list[RedisProcess], list[tuple[str, int]]]:
    """Start ``masters`` cluster-mode servers in ``directory``, join them (no replicas), await ``cluster_state:ok``.

    Returns the processes (stop each when done) and the startup nodes as ``(host, port)``. With ``tls``, every node
    also listens with TLS (client certificates required), the cluster bus runs over TLS, the nodes announce their TLS
    ports to TLS clients, and the startup nodes returned are the TLS ports.
    """
    if masters < 3:
        raise ValueError(f"masters must be ≥ 3 (Redis Cluster's minimum), got {masters}")
    cli = shutil.which(REDIS_CLI)
    if cli is None:
        raise RedisStartError("redis-cli is not on PATH (it ships with redis-server; it creates the cluster)")
    nodes: list[RedisProcess] = []
    ports: list[int] = []
    cli_tls = []
    if tls:
        cli_tls = ["--tls", "--cacert", str(tls.ca), "--cert", str(tls.client_cert), "--key", str(tls.client_key)]
    try:
        for index in range(masters):
            tls_port = free_port(cluster_bus=True) if tls else 0  # with tls-cluster, the bus is tls-port + 10000
            extra = (*redis_tls_args(tls, tls_port), "--tls-cluster", "yes") if tls else ()
            nodes.append(start_redis_server(directory / f"node{index}", cluster=True, timeout_s=timeout_s,
                                            extra_args=extra))  # fmt: skip
            ports.append(tls_port or nodes[-1].port)
        addresses = [f"{HOST}:{port}" for port in ports]
        created = subprocess.run(
            [cli, *cli_tls, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if created.returncode != 0:
            raise RedisStartError(
                f"redis-cli --cluster create failed ({created.returncode}):\n"
                f"{created.stdout[-2000:]}{created.stderr[-2000:]}"
            )
        _wait_cluster_ok(nodes, timeout_s)
    except BaseException:
        for node in nodes:
            node.stop(timeout_s=2.0)
        raise
    return nodes, [(HOST, port) for port in ports]


def _wait_cluster_ok(nodes: list[RedisProcess], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(nodes)
    while pending:
        with contextlib.suppress(OSError):
            if b"cluster_state:ok" in pending[0].command("CLUSTER", "INFO"):
                pending.pop(0)
                continue
        if time.monotonic() > deadline:
            raise RedisStartError(f"cluster node on port {pending[0].port} not ok within {timeout_s} s")
        time.sleep(_POLL_S)

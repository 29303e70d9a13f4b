"""The one place a Redis client is made: a bounded blocking pool for one node, or a cluster client.

Replies are bytes (``decode_responses=False``); the hiredis parser is used automatically when installed. A single
node's pool blocks a caller for up to ``timeout_s`` when all ``pool_size`` connections are busy, instead of opening
more. For a cluster, ``url`` may list several startup nodes separated by commas (credentials and ``rediss://`` are
taken from the first); ``pool_size`` is per node, and a node with that many busy connections raises at once.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

RedisClient = Redis | RedisCluster


class RedisConfig(Protocol):
    """Where the Redis is and how to pool connections to it (``occ.settings.Settings`` is one)."""

    @property
    def redis_url(self) -> str: ...
    @property
    def redis_cluster(self) -> bool: ...
    @property
    def redis_pool_size(self) -> int: ...
    @property
    def redis_pool_timeout_s(self) -> float: ...


def connect(
    target: RedisConfig | str,
    *,
    cluster: bool | None = None,
    pool_size: int | None = None,
    timeout_s: float | None = None,
    decode: bool = False,
) -> RedisClient:
    """A client for ``target`` (a :class:`RedisConfig` such as the server's settings, or a ``redis://`` URL);
    connections open lazily on first use.

    With a config, ``cluster``, ``pool_size`` and ``timeout_s`` default to ``redis_cluster``, ``redis_pool_size``
    and ``redis_pool_timeout_s``; with a URL, to a single node, 64 and 5 s. Close it with ``await client.aclose()``.
    ``decode`` makes replies ``str`` (decoded by hiredis in C; invalid UTF-8 becomes U+FFFD rather than an error).
    """
    if isinstance(target, str):
        url = target
    else:
        url = target.redis_url
        cluster = target.redis_cluster if cluster is None else cluster
        pool_size = target.redis_pool_size if pool_size is None else pool_size
        timeout_s = target.redis_pool_timeout_s if timeout_s is None else timeout_s
    if not url:
        raise ValueError("no Redis URL: the embedded Redis must be started first (occ.server does it)")
    pool_size = 64 if pool_size is None else pool_size
    timeout_s = 5.0 if timeout_s is None else timeout_s
    if cluster:
        first = urlsplit(url.split(",")[0].strip())
        return RedisCluster(
            startup_nodes=startup_nodes(url),
            max_connections=pool_size,
            decode_responses=decode,
            encoding_errors="replace",
            username=first.username,
            password=first.password,
            ssl=first.scheme == "rediss",
        )
    pool = BlockingConnectionPool.from_url(
        url, max_connections=pool_size, timeout=timeout_s, decode_responses=decode, encoding_errors="replace"
    )
    return Redis.from_pool(pool)


def startup_nodes(url: str) -> list[ClusterNode]:
    """``redis://h1:p1,redis://h2:p2`` (or ``redis://h1:p1,h2:p2``) as cluster startup nodes."""
    nodes = []
    for part in url.split(","):
        part = part.strip()
        address = urlsplit(part if "://" in part else f"redis://{part}")
        if not address.hostname:
            raise ValueError(f"cluster startup node {part!r} has no host")
        nodes.append(ClusterNode(address.hostname, address.port or 6379))
    return nodes

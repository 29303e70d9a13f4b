"""The one place a Redis client is made: a bounded blocking pool for one node, a cluster client, or the primary of a
Redis Sentinel set (``occ.store.urls`` lists the URL forms, TLS and credentials).

Replies are bytes (``decode_responses=False``); the hiredis parser is used automatically when installed. A single
node's pool (and a Sentinel primary's) blocks a caller for up to ``timeout_s`` when all ``pool_size`` connections
are busy, instead of opening more. For a cluster, ``pool_size`` is per node, and a node with that many busy
connections raises at once. A Sentinel client asks the sentinels for the primary whenever it opens a connection,
and drops a connection whose server was demoted, so after a failover it finds the new primary by itself.
"""

from __future__ import annotations

import ssl
from typing import Any, Protocol
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import AuthenticationError, ConnectionError, NoPermissionError, RedisError, ResponseError

from occ.store.urls import Access, is_sentinel, node_options, redacted, sentinel_address, with_access

RedisClient = Redis | RedisCluster
_CLUSTER_OPTIONS = ("username", "password", "ssl", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs",
                    "ssl_check_hostname", "socket_timeout", "socket_connect_timeout")  # fmt: skip


class RedisConfig(Protocol):
    """Where the Redis is, how to reach it and how to pool connections to it (``occ.settings.Settings`` is one)."""

    @property
    def redis_url(self) -> str: ...
    @property
    def redis_cluster(self) -> bool: ...
    @property
    def redis_pool_size(self) -> int: ...
    @property
    def redis_pool_timeout_s(self) -> float: ...
    @property
    def redis_username(self) -> str: ...
    @property
    def redis_password(self) -> str: ...
    @property
    def redis_tls_ca_file(self) -> str: ...
    @property
    def redis_tls_cert_file(self) -> str: ...
    @property
    def redis_tls_key_file(self) -> str: ...


def access_of(config: RedisConfig) -> Access:
    """The credentials and TLS files of ``config``."""
    return Access(username=config.redis_username, password=config.redis_password,
                  tls_ca_file=config.redis_tls_ca_file, tls_cert_file=config.redis_tls_cert_file,
                  tls_key_file=config.redis_tls_key_file)  # fmt: skip


def full_url(config: RedisConfig) -> str:
    """``config.redis_url`` with its credentials and TLS files in it: what a process handed only a URL needs."""
    return with_access(config.redis_url, access_of(config))


class SentinelBlockingPool(SentinelConnectionPool, BlockingConnectionPool):
    """A Sentinel primary's pool that waits for a free connection (as the single-node pool does) instead of failing
    when ``max_connections`` are busy."""


class SentinelQuorum(Sentinel):
    """redis-py's :class:`Sentinel` that never loses one of its sentinels.

    ``discover_master`` moves the sentinel that answered to the front of the shared list by swapping two positions,
    one of them read before its await; two discoveries running at once (every connection a pool opens asks, so a
    failover under load starts many) can both swap the same positions and leave one sentinel twice in the list and
    another not at all: never asked again, and its connections never closed. After every discovery the list is made
    a permutation of the sentinels given again (the order the discoveries left kept, the lost ones appended), and
    :meth:`aclose` closes every one of them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._every_sentinel = list(self.sentinels)

    async def discover_master(self, service_name: str) -> Any:
        try:
            return await super().discover_master(service_name)
        finally:
            self._keep_every_sentinel()

    def _keep_every_sentinel(self) -> None:
        kept: dict[int, Redis] = {}
        for sentinel in (*self.sentinels, *self._every_sentinel):
            kept.setdefault(id(sentinel), sentinel)
        self.sentinels[:] = kept.values()  # in place: discoveries in flight go on over the same list

    async def aclose(self) -> None:
        self._keep_every_sentinel()
        await super().aclose()


class SentinelPrimary(Redis):
    """The client of a Sentinel primary; closing it also closes its connections to the sentinels."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        await self.connection_pool.sentinel_manager.aclose()  # type: ignore[attr-defined]


def connect(
    target: RedisConfig | str,
    *,
    cluster: bool | None = None,
    pool_size: int | None = None,
    timeout_s: float | None = None,
    decode: bool = False,
) -> RedisClient:
    """A client for ``target`` (a :class:`RedisConfig` such as the server's settings, or a URL); connections open
    lazily on first use.

    With a config, ``cluster``, ``pool_size`` and ``timeout_s`` default to ``redis_cluster``, ``redis_pool_size``
    and ``redis_pool_timeout_s``; with a URL, to a single node (or Sentinel, by the URL's scheme), 64 and 5 s. Close
    it with ``await client.aclose()``. ``decode`` makes replies ``str`` (decoded by hiredis in C; invalid UTF-8
    becomes U+FFFD rather than an error).
    """
    if isinstance(target, str):
        url = target
    else:
        url = full_url(target)
        cluster = target.redis_cluster if cluster is None else cluster
        pool_size = target.redis_pool_size if pool_size is None else pool_size
        timeout_s = target.redis_pool_timeout_s if timeout_s is None else timeout_s
    if not url:
        raise ValueError("no Redis URL: the embedded Redis must be started first (occ.server does it)")
    pool_size = 64 if pool_size is None else pool_size
    timeout_s = 5.0 if timeout_s is None else timeout_s
    common = {"decode_responses": decode, "encoding_errors": "replace"}
    if cluster:
        options = {name: value for name, value in node_options(url).items() if name in _CLUSTER_OPTIONS}
        return RedisCluster(startup_nodes=startup_nodes(url), max_connections=pool_size, **common, **options)
    if is_sentinel(url):
        address = sentinel_address(url)
        sentinel = SentinelQuorum(address.sentinels, sentinel_kwargs=address.sentinel_options, **node_options(url))
        return sentinel.master_for(address.service, SentinelPrimary, SentinelBlockingPool, db=address.db,
                                   max_connections=pool_size, timeout=timeout_s, check_connection=True,
                                   **common)  # fmt: skip
    pool = BlockingConnectionPool.from_url(url, max_connections=pool_size, timeout=timeout_s, **common)
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


class RedisAccessError(RuntimeError):
    """Redis refused OCC: wrong credentials, an ACL that lacks a command, or a TLS handshake that failed."""


def access_problem(error: BaseException, url: str) -> str | None:
    """One line saying why Redis at ``url`` refused OCC, or None when ``error`` is not about access (a server that is
    down or busy is the caller's to handle)."""
    where = redacted(url)
    if isinstance(error, AuthenticationError) or (isinstance(error, ResponseError) and "WRONGPASS" in str(error)):
        return (f"Redis at {where} refused the credentials ({error}): check the user and password in redis_url or "
                "redis_username / redis_password (OCC_REDIS_PASSWORD)")  # fmt: skip
    if isinstance(error, NoPermissionError):
        return f"Redis at {where} denies a command OCC needs ({error}): see the ACL rules in docs/operations.md"
    if isinstance(error, ResponseError) and ("NOAUTH" in str(error) or "already authenticated" in str(error)):
        return f"Redis at {where} requires a password and none was given: set it in redis_url or redis_password"
    cause = error.__cause__ or error.__context__
    # Under TLS 1.3 the client's handshake completes before the server checks the client certificate: a refused or
    # missing one shows as the connection closed or reset on the first command, never as an SSL error.
    dropped = isinstance(cause, ConnectionResetError | BrokenPipeError) or "closed by server" in str(error)
    tls_dropped = url.startswith(("rediss://", "rediss+sentinel://")) and dropped
    if isinstance(error, ConnectionError) and (isinstance(cause, ssl.SSLError) or "SSL" in str(error) or tls_dropped):
        return (f"TLS with Redis at {where} failed ({error}): check redis_tls_ca_file (the CA that signed the "
                "server's certificate), and redis_tls_cert_file / redis_tls_key_file if the server requires a "
                "client certificate")  # fmt: skip
    return None


async def check_access(client: RedisClient, url: str) -> None:
    """PING through ``client``; raise :class:`RedisAccessError` with :func:`access_problem`'s line when Redis refuses
    OCC. Other failures (nothing listening) pass: they are not about access."""
    try:
        await client.ping()
    except RedisError as error:
        problem = access_problem(error, url)
        if problem is not None:
            raise RedisAccessError(problem) from None

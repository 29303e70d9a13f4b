"""Redis URLs: the forms OCC accepts, the credentials and TLS files settings add to them, and reading them back.

| form | what it names |
|---|---|
| ``redis://[user:password@]host:port/db`` | one node; ``rediss://``: over TLS |
| ``unix:///path/redis.sock?db=0`` | one node on a Unix socket |
| ``redis://h1:p1,redis://h2:p2`` (or ``redis://h1:p1,h2:p2``), with ``redis_cluster`` | Redis Cluster startup nodes |
| ``redis+sentinel://[user:password@]s1:p1,s2:p2/service[/db]`` | the primary of ``service`` the sentinels name |

``rediss+sentinel://`` speaks TLS to the sentinels and to the nodes.

Connection options ride in the query under redis-py's names, e.g. ``ssl_ca_certs`` (the CA file that signed the
server's certificate), ``ssl_certfile`` and ``ssl_keyfile`` (this client's certificate and key, for a server that
requires one), ``ssl_cert_reqs`` (``required`` by default), ``ssl_check_hostname``. For a cluster or a sentinel
set, the credentials and options of the first URL apply to every node. A sentinel URL's credentials are the data
nodes'; ``sentinel_username`` and ``sentinel_password`` in the query authenticate to the sentinels.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import msgspec
from redis.asyncio.connection import parse_url

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_QUERY = ("sentinel_username", "sentinel_password")
SECRET_QUERY = ("password", "sentinel_password")
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """Credentials and TLS files to add to a Redis URL (``occ.settings``: ``redis_username`` … ``redis_tls_key_file``).

    Attributes:
        username: the ACL user (empty: ``default``).
        password: its password.
        tls_ca_file: PEM file of the CA(s) that signed the server's certificate (needs ``rediss://``).
        tls_cert_file: PEM file of this client's certificate, for a server that requires one.
        tls_key_file: PEM file of that certificate's private key.
    """

    username: str = ""
    password: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""


_TLS_QUERY = {"tls_ca_file": "ssl_ca_certs", "tls_cert_file": "ssl_certfile", "tls_key_file": "ssl_keyfile"}


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def is_tls(url: str) -> bool:
    return url.split("://", 1)[0].lower() in ("rediss", "rediss+sentinel")


def with_access(url: str, access: Access) -> str:
    """``url`` with the credentials and TLS files of ``access`` that it does not carry itself (for a list of URLs,
    added to the first, whose options apply to all). An empty URL (the embedded Redis, not started yet) stays empty."""
    if not url:
        return url
    first, sep, others = _first(url)
    scheme, rest = first.split("://", 1) if "://" in first else ("redis", first)
    netloc, _, tail = _cut(rest, "/?")
    path, _, query = tail.partition("?")
    userinfo, _, hosts = netloc.rpartition("@")
    if not userinfo and (access.username or access.password):
        userinfo = (
            f"{quote(access.username, safe='')}:{quote(access.password, safe='')}"
            if access.password
            else (quote(access.username, safe=""))
        )
    pairs = parse_qsl(query, keep_blank_values=True)
    present = {name for name, _ in pairs}
    for field, name in _TLS_QUERY.items():
        value = getattr(access, field)
        if value and name not in present:
            pairs.append((name, value))
    netloc = f"{userinfo}@{hosts}" if userinfo else hosts
    rebuilt = f"{scheme}://{netloc}{path}" + (f"?{urlencode(pairs, safe='/')}" if pairs else "")
    return rebuilt + sep + others


def node_options(url: str) -> dict[str, Any]:
    """The connection options of (the first node of) ``url``: credentials, ``ssl`` and the query's options, as
    redis-py's connection classes take them (no host, port or db)."""
    first, _, _ = _first(url)
    scheme, rest = first.split("://", 1)
    netloc, _, tail = _cut(rest, "/?")
    userinfo, _, hosts = netloc.rpartition("@")
    host = hosts.split(",")[0]
    plain = "rediss" if is_tls(first) else ("unix" if scheme == "unix" else "redis")
    path, _, query = tail.partition("?")
    if is_sentinel(first):
        path = "/" + path.strip("/").partition("/")[2]  # /service/db → /db
        query = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in SENTINEL_QUERY])
    options = parse_url(f"{plain}://{userinfo + '@' if userinfo else ''}{host}{path}" + (f"?{query}" if query else ""))
    for name in ("host", "port", "db", "connection_class"):
        options.pop(name, None)
    if plain == "rediss":
        options["ssl"] = True
    return options


class SentinelAddress(msgspec.Struct, frozen=True):
    """What a ``redis+sentinel://`` URL names.

    Attributes:
        sentinels: (host, port) of each sentinel.
        service: the monitored primary's name (``sentinel monitor <service> …``).
        db: the database number on the data nodes.
        sentinel_options: credentials (and TLS) for the sentinels themselves.
    """

    sentinels: list[tuple[str, int]]
    service: str
    db: int
    sentinel_options: dict[str, Any]


def sentinel_address(url: str) -> SentinelAddress:
    """Read a ``redis+sentinel://`` URL; raise ``ValueError`` naming what is missing."""
    if not is_sentinel(url):
        raise ValueError(f"not a redis+sentinel:// URL: {redacted(url)}")
    rest = url.split("://", 1)[1]
    netloc, _, tail = _cut(rest, "/?")
    path, _, query = tail.partition("?")
    hosts = netloc.rpartition("@")[2]
    sentinels = []
    for part in hosts.split(","):
        address = urlsplit(f"//{part.strip()}")
        if not address.hostname:
            raise ValueError(f"sentinel {part!r} in redis_url has no host")
        sentinels.append((address.hostname, address.port or DEFAULT_SENTINEL_PORT))
    service, _, db = path.strip("/").partition("/")
    if not service:
        raise ValueError("a redis+sentinel:// URL names the service after the hosts: redis+sentinel://h:26379/mymaster")
    if db and not db.isdigit():
        raise ValueError(f"the database after the service must be a number, got {db!r}")
    found = dict(parse_qsl(query))
    sentinel_options: dict[str, Any] = {}
    for name in SENTINEL_QUERY:
        if found.get(name):
            sentinel_options[name.removeprefix("sentinel_")] = unquote(found[name])
    if is_tls(url):
        tls = {key: value for key, value in node_options(url).items() if key.startswith("ssl")}
        sentinel_options.update(tls)
    return SentinelAddress(sentinels, service, int(db or 0), sentinel_options)


def redacted(url: str) -> str:
    """``url`` (or comma-separated URLs) with every password, in the user part or the query, shown as ``***``."""
    parts = []
    for part in url.split(","):
        scheme, sep, rest = part.partition("://")
        if not sep:
            scheme, rest = "", part
        netloc, _, tail = _cut(rest, "/?")
        userinfo, at, hosts = netloc.rpartition("@")
        if at and ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        path, question, query = tail.partition("?")
        if query:
            pairs = [(k, "***" if k in SECRET_QUERY else v) for k, v in parse_qsl(query, keep_blank_values=True)]
            query = urlencode(pairs, safe="*/")
        parts.append(f"{scheme}{sep}{userinfo}{at}{hosts}{path}{question}{query}")
    return ",".join(parts)


def _first(url: str) -> tuple[str, str, str]:
    """(the first URL of a list, the separator, the rest): ``redis://a,redis://b`` splits; ``redis://a,b`` does not."""
    if url.count("://") > 1:
        first, sep, others = url.partition(",")
        return first, sep, others
    return url, "", ""


def _cut(text: str, stops: str) -> tuple[str, str, str]:
    """``text`` split at the first of ``stops``: (before, the stop, from the stop on, stop included)."""
    for index, char in enumerate(text):
        if char in stops:
            return text[:index], char, text[index:]
    return text, "", ""

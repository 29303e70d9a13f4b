"""The server's settings: one frozen msgspec Struct, loaded from defaults ← TOML file ← environment ← overrides.

Every layer is checked on its own, so an error names the key and where it came from::

    Settings.load(Path("occ.toml"))                 # file keys are the field names: port = 50052
    Settings.load(None, {"OCC_PORT": "50052"})      # OCC_<FIELD>; a nested Struct field is OCC_<SECTION>__<FIELD>
    Settings.load(None, port=50052, workers=None)   # explicit overrides (CLI flags); None means "not given"

Environment values are text and are converted leniently ("5" → 5, "true" → True); unknown ``OCC_*`` variables are
ignored (other ``occ`` commands share the prefix), unknown TOML keys and override names are errors.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from occ.config_layers import ENV_PREFIX, SettingsError, load_struct
from occ.diameter_settings import diameter_checks
from occ.erp_settings import ErpSettings

__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "is_loopback", "load_struct", "split_host_port", "validate"]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
APPENDFSYNC_MODES = ("everysec", "always")
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://")
TLS_REDIS_SCHEMES = ("rediss://", "rediss+sentinel://")
DB_URL_SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")
CLIENT_AUTH_MODES = ("none", "required")
REFLECTION_MODES = ("auto", "on", "off")
ADMIN_ROLES = ("viewer", "operator", "finance", "admin")  # occ.api.roles says what each may call
MIN_WORKER_POOL = 4  # Redis connections a worker keeps at least, whatever its share of redis_pool_size


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything ``occ serve`` needs to know. Construct with :meth:`load`; ranges are checked on construction.

    Attributes:
        host: address the gRPC server binds (IPv4 or IPv6 literal, or a name).
        port: gRPC port, 1–65535; every worker process binds it (SO_REUSEPORT).
        metrics_port: Prometheus ``/metrics`` HTTP port on ``host``; 0 disables it.
        data_dir: the server's own files: embedded Redis (``redis/``), metrics of worker processes (``metrics/``).
        redis_url: ``redis://host:port/db`` (or ``unix://``); empty starts a private redis-server under ``data_dir``.
            For a cluster, one or more comma-separated ``redis://host:port`` startup nodes; for Redis Sentinel,
            ``redis+sentinel://host:port,host:port/<service>``. ``rediss`` instead of ``redis``: TLS. The forms and
            their query options: ``occ.store.urls``.
        redis_cluster: ``redis_url`` is a Redis Cluster.
        redis_username: the Redis ACL user OCC logs in as, when ``redis_url`` names none.
        redis_password: its password (better from ``OCC_REDIS_PASSWORD`` than from a file others may read), when
            ``redis_url`` carries none.
        redis_tls_ca_file: PEM file of the CA(s) that signed the Redis server's certificate (with ``rediss://``).
        redis_tls_cert_file: PEM file of OCC's client certificate, for a Redis that requires one (``tls-auth-clients``).
        redis_tls_key_file: PEM file of that certificate's private key.
        min_replicas_acked: after each write batch, wait until this many replicas have it (Redis ``WAIT``) and fail the
            requests (UNAVAILABLE, retriable) when they do not within ``replica_ack_timeout_ms``; 0: do not wait.
            With 1 or more, a failover to a replica loses no acknowledged balance change. Single node or Sentinel.
        replica_ack_timeout_ms: how long a write batch waits for its replicas.
        settle: run a settlement worker (``occ settle``) beside the server, draining the event streams into
            ``db_url``; turn it off when settlement workers run elsewhere.
        db_url: the settlement SQL store, ``sqlite:///PATH`` or ``postgresql://user@host/db``; empty: the SQLite
            file ``<data_dir>/occ.sqlite3``.
        redis_appendfsync: the embedded Redis's AOF fsync policy, ``everysec`` or ``always`` (no loss at all).
        redis_pool_size: most connections the server opens to Redis (per node in a cluster), shared among its
            workers: each worker's pool holds its share, ``ceil(redis_pool_size / workers)``, and at least
            ``MIN_WORKER_POOL`` (its notice subscription holds one).
        redis_pool_timeout_s: how long a request waits for a free pooled connection before failing.
        workers: server processes; 1 runs in the ``occ serve`` process itself.
        shards: virtual shards accounts are spread over (hash tags ``{s000}``…), 1–16384.
        tariff_dir: a tariff directory loaded at start when Redis holds no current tariff; empty: none.
        demo_account: an account created at start (if missing) with 10.00 of credit on the tariff's first plan, for
            trying OCC out; empty: none.
        validity_time_s: how long a grant is valid before the client must come back.
        sweep_interval_s: how often the sweeper looks for sessions past their deadline.
        batch_window_ms: a fixed wait before each batch; 0 (the default) batches by load alone (see batcher.py).
        batch_max: most requests in one batch.
        max_message_bytes: largest gRPC message received or sent.
        log_level: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).
        log_json: one JSON object per log line; false gives plain text.
        grace_s: how long a stopping server lets in-flight requests finish.
        tls_cert_file: PEM certificate chain of the server; with ``tls_key_file`` every listener speaks TLS only. The
            files are read again when they change: the next handshake uses the new certificate, without a restart.
        tls_key_file: PEM private key of ``tls_cert_file``.
        tls_client_ca_file: PEM CA certificates that sign client certificates (mutual TLS).
        tls_client_auth: client certificates on the Charging listener: ``none`` or ``required`` (verified against
            ``tls_client_ca_file``). grpcio's Python server has no "optional" mode: it either asks for none or
            requires one.
        admin_tls_client_auth: the same for the Admin listener; empty: as ``tls_client_auth``.
        allow_plaintext: serve without TLS on an address that is not loopback, on purpose (refused otherwise).
        reflection: gRPC server reflection: ``auto`` (on for a listener on a loopback address only), ``on`` or
            ``off``.
        admin_listen: ``host:port`` of the Admin listener, where every call is authenticated (``[::1]:50052`` for
            IPv6); empty: no Admin listener.
        admin_on_charging_port: also serve Admin (authenticated alike) on the Charging port.
        admin_tokens_file: the hashed bearer tokens (``occ token``); empty: ``<data_dir>/admin-tokens.json``.
        admin_client_roles: client certificates that may call Admin, ``identity=role`` comma-separated; identity is a
            certificate's DNS name (SAN) or common name, role one of viewer, operator, finance, admin.
        admin_token_bootstrap: at start, when ``<data_dir>/admin-token`` is missing, create a token of role
            ``admin`` and write it there (mode 0600) for the local operator's ``occ`` commands.
        audit_log: one JSON line per Admin call (who, what, outcome); empty: ``<data_dir>/audit.jsonl``.
        tariff_root: LoadTariff by path reads tariff directories below this one only; empty:
            ``<data_dir>/tariffs``.
        tariff_upload_max_bytes: the largest tariff LoadTariff takes, its files added up (uncompressed); also
            bounds the Admin listener's message size.
        health_interval_s: how often each worker pings Redis; gRPC health is NOT_SERVING while the ping fails.
        billable_item_classes: the billable item class of each exported xDR (``occ export billable-items``), by
            service and ledger code: ``service:ledger_code=CLASS`` comma-separated, ``*`` for any
            (``voice:400000001=VOICE_LOCAL,*:*=OTHER``); empty: every item is class ``OCC``.
        erp: the ERP middleware, OCC's credentials there and what goes to it (``[erp]``, ``OCC_ERP__<FIELD>``;
            :class:`~occ.erp_settings.ErpSettings`), for ``occ export`` and ``occ erp-gl``.
        diameter_port: TCP port of the Diameter Gy/Ro gateway (``occ.diameter``); 0 (the default): no gateway.
        diameter_host: address the gateway binds; empty: ``host``.
        diameter_origin_host: OCC's Diameter identity (Origin-Host of its answers and requests).
        diameter_origin_realm: OCC's realm (Origin-Realm).
        diameter_peers: the peers allowed to connect, ``origin-host=address`` comma-separated (an address or a
            network, ``pgw1.example.net=10.0.0.0/24``); any other peer is refused with DIAMETER_UNKNOWN_PEER.
        diameter_watchdog_s: Tw: a peer silent this long gets a DWR; one that leaves it unanswered as long is closed.
        console_listen: ``host:port`` of the operator console (``occ console``, started beside ``occ serve``);
            empty: no console. Like every listener, a non-loopback address needs TLS (the server's certificate and
            key) or ``allow_plaintext``.
        console_metrics: more Prometheus ``/metrics`` URLs the console's dashboard reads, comma-separated (e.g. an
            ``occ export --metrics-port`` for export outcomes, settlement workers run elsewhere for the lag); the
            server's own (``metrics_port``) and its settlement worker's are always read.
        console_admin_ca_file: PEM CA the console checks the Admin listener's certificate against when TLS is on;
            empty: ``tls_cert_file`` (a self-signed server certificate is its own CA).
        console_session_idle_s: a console sign-in ends after this long without a request.
    """

    host: str = "127.0.0.1"
    port: int = 50051
    metrics_port: int = 9464
    data_dir: Path = Path("data")
    redis_url: str = ""
    redis_cluster: bool = False
    redis_username: str = ""
    redis_password: str = ""
    redis_tls_ca_file: str = ""
    redis_tls_cert_file: str = ""
    redis_tls_key_file: str = ""
    min_replicas_acked: int = 0
    replica_ack_timeout_ms: int = 1000
    settle: bool = True
    db_url: str = ""
    redis_appendfsync: str = "everysec"
    redis_pool_size: int = 64
    redis_pool_timeout_s: float = 5.0
    workers: int = 1
    shards: int = 256
    tariff_dir: str = ""
    demo_account: str = ""
    validity_time_s: int = 60
    sweep_interval_s: float = 1.0
    batch_window_ms: float = 0.0
    batch_max: int = 512
    max_message_bytes: int = 65536
    log_level: str = "INFO"
    log_json: bool = True
    grace_s: float = 5.0
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    tls_client_auth: str = "none"
    admin_tls_client_auth: str = ""
    allow_plaintext: bool = False
    reflection: str = "auto"
    admin_listen: str = "127.0.0.1:50052"
    admin_on_charging_port: bool = False
    admin_tokens_file: str = ""
    admin_client_roles: str = ""
    admin_token_bootstrap: bool = True
    audit_log: str = ""
    tariff_root: str = ""
    tariff_upload_max_bytes: int = 16 * 1024 * 1024

    @property
    def worker_redis_pool_size(self) -> int:
        """The Redis connections of one worker: its share of ``redis_pool_size``."""
        return max(MIN_WORKER_POOL, -(-self.redis_pool_size // self.workers))

    @property
    def tls(self) -> bool:
        """The listeners speak TLS (a certificate and its key are configured)."""
        return bool(self.tls_cert_file and self.tls_key_file)

    @property
    def admin_client_auth(self) -> str:
        return self.admin_tls_client_auth or self.tls_client_auth

    @property
    def console_url(self) -> str:
        """The console's address for people (``console_listen`` must be set): ``http://127.0.0.1:8080/``."""
        host, port = split_host_port(self.console_listen)
        return f"{'https' if self.tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}/"

    health_interval_s: float = 1.0
    billable_item_classes: str = ""
    erp: ErpSettings = msgspec.field(default_factory=ErpSettings)
    diameter_port: int = 0
    diameter_host: str = ""
    diameter_origin_host: str = "occ.localdomain"
    diameter_origin_realm: str = "localdomain"
    diameter_peers: str = ""
    diameter_watchdog_s: float = 30.0
    console_listen: str = "127.0.0.1:8080"
    console_metrics: str = ""
    console_admin_ca_file: str = ""
    console_session_idle_s: float = 3600.0

    def __post_init__(self) -> None:
        problems = tuple(validate(self))
        if problems:
            raise SettingsError("; ".join(message for _, message in problems), problems)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the TOML file at ``path`` (if given), then ``OCC_*`` in ``env``, then ``overrides``.

        ``env`` defaults to ``os.environ``; pass ``{}`` to ignore the environment. Raises :class:`SettingsError`.
        """
        return load_struct(cls, path, os.environ if env is None else env, overrides)


def validate(settings: Settings) -> list[tuple[str, str]]:
    """Every range problem of ``settings`` as (field, message naming the field); empty when all is well."""
    checks = _where_checks(settings) + _how_checks(settings) + diameter_checks(settings)
    problems = [(field, message) for field, ok, message in checks if not ok]
    return problems + _security_problems(settings)


Check = tuple[str, bool, str]
"""(field, whether it is fine, the message naming it when it is not)."""


def _where_checks(s: Settings) -> list[Check]:
    """Addresses and stores: where the server listens, its Redis and its SQL store."""
    schemes = ", ".join(REDIS_URL_SCHEMES)
    return [
        ("host", bool(s.host), "host must not be empty"),
        ("port", 1 <= s.port <= 65535, f"port must be 1–65535, got {s.port}"),
        (
            "metrics_port",
            0 <= s.metrics_port <= 65535,
            f"metrics_port must be 0 (off) or 1–65535, got {s.metrics_port}",
        ),
        (
            "redis_url",
            not s.redis_url or s.redis_url.startswith(REDIS_URL_SCHEMES),
            f"redis_url must start with {schemes} (or be empty for the embedded Redis), got {s.redis_url!r}",
        ),
        (
            "db_url",
            not s.db_url or s.db_url.startswith(DB_URL_SCHEMES),
            f"db_url must start with {', '.join(DB_URL_SCHEMES)} (or be empty for <data_dir>/occ.sqlite3), "
            f"got {s.db_url!r}",
        ),
        (
            "redis_cluster",
            not s.redis_cluster or bool(s.redis_url),
            "redis_cluster needs redis_url (the embedded Redis is a single node)",
        ),
        *_redis_access_checks(s),
        (
            "redis_appendfsync",
            s.redis_appendfsync in APPENDFSYNC_MODES,
            f"redis_appendfsync must be one of {', '.join(APPENDFSYNC_MODES)}, got {s.redis_appendfsync!r}",
        ),
        (
            "redis_pool_size",
            1 <= s.redis_pool_size <= 100_000,
            f"redis_pool_size must be 1–100000, got {s.redis_pool_size}",
        ),
        (
            "redis_pool_timeout_s",
            s.redis_pool_timeout_s > 0,
            f"redis_pool_timeout_s must be > 0, got {s.redis_pool_timeout_s}",
        ),
    ]


def _how_checks(s: Settings) -> list[Check]:
    """Capacities, timings and logging."""
    return [
        ("workers", 1 <= s.workers <= 1024, f"workers must be 1–1024, got {s.workers}"),
        ("shards", 1 <= s.shards <= 16384, f"shards must be 1–16384, got {s.shards}"),
        (
            "validity_time_s",
            1 <= s.validity_time_s <= 86_400,
            f"validity_time_s must be 1–86400, got {s.validity_time_s}",
        ),
        (
            "sweep_interval_s",
            0 < s.sweep_interval_s <= 3600,
            f"sweep_interval_s must be > 0 and ≤ 3600, got {s.sweep_interval_s}",
        ),
        ("batch_window_ms", 0 <= s.batch_window_ms <= 1000, f"batch_window_ms must be 0–1000, got {s.batch_window_ms}"),
        ("batch_max", 1 <= s.batch_max <= 65536, f"batch_max must be 1–65536, got {s.batch_max}"),
        (
            "max_message_bytes",
            1024 <= s.max_message_bytes <= 2**31 - 1,
            f"max_message_bytes must be 1024–2147483647, got {s.max_message_bytes}",
        ),
        (
            "log_level",
            s.log_level.upper() in LOG_LEVELS,
            f"log_level must be one of {', '.join(LOG_LEVELS)}, got {s.log_level!r}",
        ),
        ("grace_s", 0 <= s.grace_s <= 3600, f"grace_s must be 0–3600, got {s.grace_s}"),
        (
            "health_interval_s",
            0.05 <= s.health_interval_s <= 60,
            f"health_interval_s must be 0.05–60, got {s.health_interval_s}",
        ),
        (
            "console_session_idle_s",
            60 <= s.console_session_idle_s <= 86_400,
            f"console_session_idle_s must be 60–86400, got {s.console_session_idle_s}",
        ),
    ]


def is_loopback(host: str) -> bool:
    """``host`` is a loopback address (``127.0.0.0/8``, ``::1``) or ``localhost``; any other name is not."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host_port(address: str) -> tuple[str, int]:
    """``("127.0.0.1", 50052)`` from ``127.0.0.1:50052`` (``[::1]:50052`` for IPv6); ValueError when malformed."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not host:port (port 1–65535; [::1]:50052 for IPv6)")
    return host, int(port)


def client_roles(text: str) -> dict[str, str]:
    """``{"ops.example.com": "operator"}`` from ``ops.example.com=operator``; ValueError naming the bad pair."""
    roles: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        identity, sep, role = (item.strip() for item in pair.partition("="))
        if not sep or not identity or role not in ADMIN_ROLES:
            raise ValueError(f"{pair!r} is not identity=role with a role among {', '.join(ADMIN_ROLES)}")
        roles[identity] = role
    return roles


def _security_problems(s: Settings) -> list[tuple[str, str]]:
    """What TLS, the Admin listener and reflection settings get wrong, as (field, message naming it)."""
    problems: list[tuple[str, str]] = []
    if bool(s.tls_cert_file) != bool(s.tls_key_file):
        problems.append(("tls_key_file", "tls_cert_file and tls_key_file go together: set both or neither"))
    modes = [("tls_client_auth", s.tls_client_auth)]
    if s.admin_tls_client_auth:  # empty: as tls_client_auth, checked once
        modes.append(("admin_tls_client_auth", s.admin_tls_client_auth))
    for field, mode in modes:
        if mode not in CLIENT_AUTH_MODES:
            problems.append((field, f"{field} must be none or required, got {mode!r} (grpcio's Python server cannot "
                                    "ask for a client certificate without requiring it)"))  # fmt: skip
        elif mode == "required" and not (s.tls and s.tls_client_ca_file):
            problems.append((field, f"{field} = required needs tls_cert_file, tls_key_file and tls_client_ca_file"))
    if s.reflection not in REFLECTION_MODES:
        problems.append(("reflection", f"reflection must be auto, on or off, got {s.reflection!r}"))
    listeners = [("host", s.host)] if s.host else []
    for field in ("admin_listen", "console_listen"):
        if getattr(s, field):
            try:
                listeners.append((field, split_host_port(getattr(s, field))[0]))
            except ValueError as error:
                problems.append((field, f"{field}: {error}"))
    for field, host in listeners:
        if not (s.tls or s.allow_plaintext or is_loopback(host)):
            problems.append((field, f"{field} {host} is not a loopback address: serving it without TLS is refused "
                                    "(set tls_cert_file and tls_key_file, or allow_plaintext to mean it)"))  # fmt: skip
    diameter_host = s.diameter_host or s.host
    if s.diameter_port and not (s.allow_plaintext or is_loopback(diameter_host)):
        problems.append(("diameter_host", f"diameter_host {diameter_host} is not a loopback address: the Diameter "
                                          "gateway speaks plain TCP (set allow_plaintext to mean it)"))  # fmt: skip
    try:
        client_roles(s.admin_client_roles)
    except ValueError as error:
        problems.append(("admin_client_roles", f"admin_client_roles: {error}"))
    if not 1024 <= s.tariff_upload_max_bytes <= 1 << 30:
        limit = f"tariff_upload_max_bytes must be 1024–1073741824, got {s.tariff_upload_max_bytes}"
        problems.append(("tariff_upload_max_bytes", limit))
    return problems


def _redis_access_checks(s: Settings) -> list[tuple[str, bool, str]]:
    """The checks of the Redis TLS, credentials, Sentinel and replica settings (``validate``'s rows)."""
    names = ("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")
    tls_files = [name for name in names if getattr(s, name)]
    sentinel = s.redis_url.startswith(("redis+sentinel://", "rediss+sentinel://"))
    plain = s.redis_url.split("://")[0] + "://" if s.redis_url else "the embedded Redis"
    return [
        (
            tls_files[0] if tls_files else "redis_tls_ca_file",
            not tls_files or s.redis_url.startswith(TLS_REDIS_SCHEMES),
            f"{', '.join(tls_files)} {'needs' if len(tls_files) == 1 else 'need'} a rediss:// (or "
            f"rediss+sentinel://) redis_url: TLS is off for {plain}",
        ),
        (
            "redis_tls_key_file",
            bool(s.redis_tls_cert_file) == bool(s.redis_tls_key_file),
            "redis_tls_cert_file and redis_tls_key_file go together (a client certificate and its key)",
        ),
        ("redis_cluster", not (sentinel and s.redis_cluster), "redis_cluster cannot be used with a redis+sentinel URL"),
        (
            "min_replicas_acked",
            0 <= s.min_replicas_acked <= 16,
            f"min_replicas_acked must be 0–16, got {s.min_replicas_acked}",
        ),
        (
            "min_replicas_acked",
            not s.min_replicas_acked or (bool(s.redis_url) and not s.redis_cluster),
            "min_replicas_acked needs a redis_url with replicas, single node or Sentinel (the embedded Redis has "
            "none; on Redis Cluster WAIT is not supported by OCC yet)",
        ),
        (
            "replica_ack_timeout_ms",
            1 <= s.replica_ack_timeout_ms <= 60_000,
            f"replica_ack_timeout_ms must be 1–60000, got {s.replica_ack_timeout_ms}",
        ),
    ]

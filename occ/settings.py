"""The server's settings: one frozen msgspec Struct, loaded from defaults ← TOML file ← environment ← overrides.

Every layer is checked on its own, so an error names the key and where it came from::

    Settings.load(Path("occ.toml"))                 # file keys are the field names: port = 50052
    Settings.load(None, {"OCC_PORT": "50052"})      # OCC_<FIELD>; a nested Struct field is OCC_<SECTION>__<FIELD>
    Settings.load(None, port=50052, workers=None)   # explicit overrides (CLI flags); None means "not given"

Environment values are text and are converted leniently ("5" → 5, "true" → True); unknown ``OCC_*`` variables are
ignored (other ``occ`` commands share the prefix), unknown TOML keys and override names are errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

ENV_PREFIX = "OCC_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
APPENDFSYNC_MODES = ("everysec", "always")
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://")
DB_URL_SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")

T = TypeVar("T", bound=msgspec.Struct)


class SettingsError(ValueError):
    """A setting is unknown, has the wrong type or is out of range; the message names it and its source.

    Attributes:
        problems: (field, message) for each range problem found on construction; empty for other errors.
    """

    def __init__(self, message: str, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything ``occ serve`` needs to know. Construct with :meth:`load`; ranges are checked on construction.

    Attributes:
        host: address the gRPC server binds (IPv4 or IPv6 literal, or a name).
        port: gRPC port, 1–65535; every worker process binds it (SO_REUSEPORT).
        metrics_port: Prometheus ``/metrics`` HTTP port on ``host``; 0 disables it.
        data_dir: the server's own files: embedded Redis (``redis/``), metrics of worker processes (``metrics/``).
        redis_url: ``redis://host:port/db`` (or ``unix://``); empty starts a private redis-server under ``data_dir``.
            For a cluster, one or more comma-separated ``redis://host:port`` startup nodes.
        redis_cluster: ``redis_url`` is a Redis Cluster.
        settle: run a settlement worker (``occ settle``) beside the server, draining the event streams into
            ``db_url``; turn it off when settlement workers run elsewhere.
        db_url: the settlement SQL store, ``sqlite:///PATH`` or ``postgresql://user@host/db``; empty: the SQLite
            file ``<data_dir>/occ.sqlite3``.
        redis_appendfsync: the embedded Redis's AOF fsync policy, ``everysec`` or ``always`` (no loss at all).
        redis_pool_size: most connections a worker process opens to Redis (per node in a cluster).
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
    """

    host: str = "127.0.0.1"
    port: int = 50051
    metrics_port: int = 9464
    data_dir: Path = Path("data")
    redis_url: str = ""
    redis_cluster: bool = False
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
    checks = _where_checks(settings) + _how_checks(settings)
    return [(field, message) for field, ok, message in checks if not ok]


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
    ]


def load_struct(
    cls: type[T], path: Path | None, env: Mapping[str, str], overrides: Mapping[str, Any], *, prefix: str = ENV_PREFIX
) -> T:
    """Build ``cls`` (a Struct whose fields all have defaults) from a TOML file, ``env`` and ``overrides``.

    A field whose type is itself such a Struct is a section: a TOML table, and ``<prefix><SECTION>__<FIELD>`` in
    the environment. Raises :class:`SettingsError` naming the key and where its value came from.
    """
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}  # dotted key → where its current value came from
    layers: list[tuple[Mapping[str, Any], Callable[[str], str], bool]] = []
    if path is not None:
        layers.append((_read_toml(path), lambda key: f"config file {path}, key {key}", True))
    layers.append((_from_env(cls, env, prefix), _env_label(prefix), False))
    given = {key: value for key, value in overrides.items() if value is not None}
    layers.append((given, lambda key: f"override {key}", False))
    for raw, label, strict in layers:
        _merge(values, _converted(cls, raw, label, strict=strict), origins, label)
    try:
        return _build(cls, values)
    except SettingsError as error:
        if not error.problems:
            raise
        lines = [
            f"{message} (from {origins[field]})" if field in origins else message for field, message in error.problems
        ]
        raise SettingsError("invalid settings: " + "; ".join(lines), error.problems) from None


def _env_label(prefix: str) -> Callable[[str], str]:
    return lambda key: f"environment variable {prefix}{key.upper().replace('.', '__')}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return msgspec.toml.decode(path.read_bytes())
    except OSError as error:
        raise SettingsError(f"config file {path}: cannot be read: {error.strerror or error}") from None
    except msgspec.DecodeError as error:
        raise SettingsError(f"config file {path}: not valid TOML: {error}") from None


def _section(field_type: Any) -> type[msgspec.Struct] | None:
    is_struct = isinstance(field_type, type) and issubclass(field_type, msgspec.Struct)
    return field_type if is_struct else None


def _from_env(cls: type[msgspec.Struct], env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The ``cls`` values found in ``env`` as text, nested per section; unknown variables are left alone."""
    found: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = f"{prefix}{field.name.upper()}"
        section = _section(field.type)
        if section is not None:
            nested = _from_env(section, env, f"{name}__")
            if nested:
                found[field.name] = nested
        elif name in env:
            found[field.name] = env[name]
    return found


def _converted(
    cls: type[msgspec.Struct], raw: Mapping[str, Any], label: Callable[[str], str], *, strict: bool, under: str = ""
) -> dict[str, Any]:
    """``raw`` with every value converted to its field's type; unknown keys and bad values raise, naming both."""
    fields = {field.name: field for field in msgspec.structs.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{under}{key}"
        field = fields.get(key)
        if field is None:
            raise SettingsError(f"{label(dotted)}: unknown setting (known: {', '.join(sorted(fields))})")
        section = _section(field.type)
        if section is not None:
            if not isinstance(value, Mapping):
                raise SettingsError(f"{label(dotted)}: must be a table of settings, got {type(value).__name__}")
            out[key] = _converted(section, value, label, strict=strict, under=f"{dotted}.")
            continue
        try:
            out[key] = msgspec.convert(value, field.type, strict=strict, dec_hook=_dec_hook)
        except msgspec.ValidationError as error:
            raise SettingsError(f"{label(dotted)}: {value!r} is not valid ({error})") from None
    return out


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str | os.PathLike):
        return Path(value)
    raise ValueError(f"Expected `{getattr(kind, '__name__', kind)}`, got `{type(value).__name__}`")


def _merge(
    into: dict[str, Any],
    layer: Mapping[str, Any],
    origins: dict[str, str],
    label: Callable[[str], str],
    under: str = "",
) -> None:
    for key, value in layer.items():
        dotted = f"{under}{key}"
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value, origins, label, f"{dotted}.")
        else:
            into[key] = value
            origins[dotted] = label(dotted)


def _build(cls: type[T], values: Mapping[str, Any]) -> T:
    kwargs = dict(values)
    for field in msgspec.structs.fields(cls):
        section = _section(field.type)
        if section is not None and isinstance(kwargs.get(field.name), dict):
            kwargs[field.name] = _build(section, kwargs[field.name])
    return cls(**kwargs)

"""The charging server's Prometheus metrics (all named ``occ_*``), created once at import.

Several worker processes share one ``/metrics`` through prometheus-client's multi-process mode: the parent points
``PROMETHEUS_MULTIPROC_DIR`` at an empty directory *before* any worker imports this module (see
:mod:`occ.metrics_server`), each worker writes its values there, and the parent serves the aggregate. Gauges say
how they aggregate (``livesum``, ``livemax``: dead workers drop out).

Servicers count their own answers (``REQUESTS`` by method and telecom result code); the gRPC interceptor
(:mod:`occ.api.interceptors`) counts calls by gRPC status and times them (``GRPC_CALLS``, ``REQUEST_SECONDS``).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from occ.metrics_server import serve_metrics

__all__ = [
    "BATCH_SIZE",
    "DIAMETER_MESSAGES",
    "DIAMETER_PEERS",
    "EVENT_LOOP_LAG_SECONDS",
    "GC_PAUSE_SECONDS",
    "GRPC_CALLS",
    "LATENCY_BUCKETS_S",
    "OPEN_SESSIONS",
    "REDIS_ROUNDTRIPS",
    "REDIS_ROUNDTRIP_SECONDS",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SWEEPER_CLOSES",
    "TARIFF_INFO",
    "TARIFF_RELOADS",
    "count_diameter",
    "observe_gc_pause",
    "observe_redis_roundtrip",
    "serve_metrics",
    "set_current_tariff",
]

LATENCY_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
PAUSE_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

REQUESTS = Counter(
    "occ_requests", "Charging requests answered, by gRPC method and telecom result code.", ["method", "result_code"]
)
GRPC_CALLS = Counter("occ_grpc_calls", "Unary gRPC calls finished, by method and gRPC status code.", ["method", "code"])
REQUEST_SECONDS = Histogram(
    "occ_request_duration_seconds", "Time to answer a unary gRPC call, by method.", ["method"],
    buckets=LATENCY_BUCKETS_S,
)  # fmt: skip
BATCH_SIZE = Histogram("occ_batch_size", "Requests per micro-batch.", buckets=BATCH_BUCKETS)
REDIS_ROUNDTRIPS = Counter("occ_redis_roundtrips", "Redis round trips, by kind (reserve, commit, sweep…).", ["kind"])
REDIS_ROUNDTRIP_SECONDS = Histogram(
    "occ_redis_roundtrip_seconds", "Time of one Redis round trip (script call or pipeline).", buckets=LATENCY_BUCKETS_S
)
EVENT_LOOP_LAG_SECONDS = Histogram(
    "occ_event_loop_lag_seconds",
    "How late the event loop woke a task due every 5 ms (occ.core.pauses.LoopLag): its pauses, as they stall calls.",
    buckets=PAUSE_BUCKETS_S,
)
GC_PAUSE_SECONDS = Histogram(
    "occ_gc_pause_seconds", "Time of one garbage collection, by generation (2: full).", ["generation"],
    buckets=PAUSE_BUCKETS_S,
)  # fmt: skip
_GC_PAUSE_BY_GENERATION = [GC_PAUSE_SECONDS.labels(str(generation)).observe for generation in range(3)]
OPEN_SESSIONS = Gauge(
    "occ_open_sessions",
    "Open sessions in Redis (all frontends), as last counted by a sweeper.",
    multiprocess_mode="livemax",
)
SWEEPER_CLOSES = Counter("occ_sweeper_closes", "Sessions closed by the sweeper, by cause (TIMEOUT…).", ["cause"])
TARIFF_RELOADS = Counter("occ_tariff_reloads", "Times a worker took a new current tariff (the first included).")
TARIFF_INFO = Gauge(
    "occ_tariff_info", "The current tariff: 1 for its content hash (0 for ones since replaced).", ["hash"],
    multiprocess_mode="livemax",
)  # fmt: skip
DIAMETER_PEERS = Gauge(
    "occ_diameter_peers", "Diameter peer connections of the gateway, by state (wait_cer, open).", ["state"],
    multiprocess_mode="livesum",
)  # fmt: skip
DIAMETER_MESSAGES = Counter(
    "occ_diameter_messages",
    "Diameter messages, by command, direction (received, sent), kind (request, answer) and Result-Code of answers.",
    ["command", "direction", "kind", "result_code"],
)

_ROUNDTRIPS_BY_SCRIPT: dict[str, Callable[[], None]] = {}
_current_tariff: list[str] = []  # the hash this process last set to 1


def set_current_tariff(tariff_hash: str) -> None:
    """Mark ``tariff_hash`` current in ``occ_tariff_info`` (the previous one drops to 0) and count it as a reload.

    Setting the hash that is already current does nothing.

    Labels are set to 0 rather than removed: multi-process files keep every label set a worker ever wrote.
    """
    if _current_tariff and _current_tariff[0] == tariff_hash:
        return
    if _current_tariff:
        TARIFF_INFO.labels(_current_tariff[0]).set(0)
    TARIFF_INFO.labels(tariff_hash).set(1)
    TARIFF_RELOADS.inc()
    _current_tariff[:] = [tariff_hash]


def observe_gc_pause(generation: int, seconds: float) -> None:
    """Time one garbage collection of ``generation`` (the ``GcWatch`` hook)."""
    _GC_PAUSE_BY_GENERATION[generation](seconds)


def observe_redis_roundtrip(script: str, seconds: float) -> None:
    """Count and time one Redis round trip of ``script`` (the store's ``on_roundtrip`` hook)."""
    count = _ROUNDTRIPS_BY_SCRIPT.get(script)
    if count is None:  # the counter's child, bound once per script
        count = _ROUNDTRIPS_BY_SCRIPT[script] = REDIS_ROUNDTRIPS.labels(script).inc
    count()
    REDIS_ROUNDTRIP_SECONDS.observe(seconds)


def count_diameter(command: str, direction: str, *, request: bool, result_code: str = "") -> None:
    """Count one Diameter message (``occ_diameter_messages``; ``command`` is a short name: CE, DW, CC…)."""
    DIAMETER_MESSAGES.labels(command, direction, "request" if request else "answer", result_code).inc()

"""Prometheus metrics of ``occ settle`` (served on ``--metrics-port``)."""

from prometheus_client import Counter, Gauge, Histogram

ENTRIES = Counter("occ_settle_entries_total", "Stream entries settled, by outcome (booked, dead_letter).", ["outcome"])
ROWS = Counter(
    "occ_settle_rows_total", "Rows offered to the SQL store (inserted or already there), by table.", ["table"]
)
ERRORS = Counter("occ_settle_errors_total", "Failed settlement steps, retried (sql, redis).", ["kind"])
BATCH_SECONDS = Histogram(
    "occ_settle_batch_seconds",
    "Time to book, write and acknowledge one batch.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LAG = Gauge("occ_settle_lag_entries", "Entries on the streams not yet delivered to the settlement group.")
PENDING = Gauge("occ_settle_pending_entries", "Entries delivered to a settlement worker and not yet acknowledged.")
THROUGHPUT = Gauge("occ_settle_throughput_entries_per_second", "Entries settled per second over the last interval.")

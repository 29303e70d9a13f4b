"""Prometheus metrics of the ERP exporter (``occ export --metrics-port``)."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "occ_export_requests_total",
    "SOAP calls to the ERP middleware, by operation (submit, status) and result (ok, rejected, transient, unknown).",
    ["operation", "result"],
)
OUTCOMES = Counter(
    "occ_export_outcomes_total",
    "Outbox documents' outcomes per attempt (accepted, duplicate, rejected, void, retrying, lost_lease).",
    ["outcome"],
)
REQUEST_SECONDS = Histogram(
    "occ_export_request_seconds",
    "Time of one SOAP call to the ERP middleware.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PENDING = Gauge("occ_export_pending_documents", "Outbox documents not yet in the ERP (state PENDING).")
RETRYING = Gauge("occ_export_retrying_documents", "PENDING documents that have been tried at least once.")
OLDEST_PENDING_AGE = Gauge(
    "occ_export_oldest_pending_age_seconds", "Age of the oldest PENDING outbox document (0 when none)."
)
ERRORS = Counter("occ_export_errors_total", "Export loop rounds that failed on the SQL store (retried).")

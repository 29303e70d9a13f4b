"""What a load process records: latency histograms (HdrHistogram, µs), result codes, errors and a per-second timeline.

Percentiles come from HdrHistogram (1 µs to 60 s, 3 significant digits: every value within 0.1 %), never from a
sorted list of samples; histograms travel between processes encoded and are merged by adding counts, which is exact.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

HIST_MIN_US, HIST_MAX_US, HIST_DIGITS = 1, 60_000_000, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HIST_MIN_US, HIST_MAX_US, HIST_DIGITS)


def clamp_us(nanoseconds: int) -> int:
    """A duration in whole microseconds, clamped to the histogram's range."""
    return max(HIST_MIN_US, min(nanoseconds // 1000, HIST_MAX_US))


def quantiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    """p50, p90, p99, p99.9, max and mean of a histogram of microseconds, in milliseconds."""
    values = {f"p{p:g}": histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    return {**values, "max": histogram.get_max_value() / 1000, "mean": round(histogram.get_mean_value() / 1000, 3)}


def merged(encoded: list[bytes]) -> HdrHistogram:
    """One histogram holding the counts of every encoded histogram given (empty ones are skipped)."""
    histogram = new_histogram()
    for part in encoded:
        if part:
            histogram.decode_and_add(part)
    return histogram


@dataclass
class Recorded:
    """A process's records in picklable form (histograms encoded), sent to the parent at the end of a phase.

    Attributes:
        requests: answered requests, whatever their result code.
        codes: result codes by request kind (``start``, ``update``, …) and code name.
        errors: gRPC errors (status name) and stream errors, by name.
        skipped: open loop: arrivals not sent because too many were in flight.
        calls: softswitch mode: what became of the calls (``completed``, ``rejected_credit``, ``cut_off`` …).
        histogram: latency of every request, µs, encoded.
        by_kind: latency per request kind, µs, encoded.
        send_lag: open loop: actual − scheduled send time, µs, encoded (empty otherwise).
        service: open loop: answer − actual send, µs, encoded (empty otherwise).
        timeline: per whole second since the release: (second, answered requests, errors, encoded latency µs).
        elapsed_s: release → last answer.
        cpu_s: the process's own CPU time over the same span.
        unended: softswitch mode: (account, session id) of calls started but not ended (an error came between).
    """

    requests: int = 0
    codes: dict[str, Counter[str]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    histogram: bytes = b""
    by_kind: dict[str, bytes] = field(default_factory=dict)
    send_lag: bytes = b""
    service: bytes = b""
    timeline: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    unended: list[tuple[str, str]] = field(default_factory=list)


class Recorder:
    """Counts and latencies of one load process; nothing is recorded until ``start`` (the warm-up is not measured)."""

    def __init__(self) -> None:
        self.histogram = new_histogram()
        self.by_kind: dict[str, HdrHistogram] = {}
        self.send_lag = new_histogram()
        self.service = new_histogram()
        self.codes: dict[str, Counter[str]] = {}
        self.errors: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.requests = 0
        self.skipped = 0
        self.measuring = False
        self.started_s = 0.0  # perf_counter at the release
        self.last_answer_s = 0.0
        self._seconds: dict[int, list] = {}  # second → [answered, errors, histogram]

    def start(self) -> None:
        self.measuring = True
        self.started_s = time.perf_counter()

    def _second(self, now_s: float) -> list:
        second = int(now_s - self.started_s)
        entry = self._seconds.get(second)
        if entry is None:
            entry = self._seconds[second] = [0, 0, new_histogram()]
        return entry

    def answer(self, kind: str, code: str, latency_ns: int, service_ns: int | None = None, *,
               headline: bool = True) -> None:  # fmt: skip
        """One answered request. ``headline`` false keeps its latency out of the overall and per-second histograms
        (it stays in its kind's): for the burst of ends a phase's hard stop forces."""
        if not self.measuring:
            return
        now_s = time.perf_counter()
        latency_us = clamp_us(latency_ns)
        self.requests += 1
        self.codes.setdefault(kind, Counter())[code] += 1
        if headline:
            self.histogram.record_value(latency_us)
        by_kind = self.by_kind.get(kind)
        if by_kind is None:
            by_kind = self.by_kind[kind] = new_histogram()
        by_kind.record_value(latency_us)
        if service_ns is not None:
            self.service.record_value(clamp_us(service_ns))
        entry = self._second(now_s)
        entry[0] += 1
        if headline:
            entry[2].record_value(latency_us)
        self.last_answer_s = now_s

    def error(self, name: str) -> None:
        if self.measuring:
            now_s = time.perf_counter()
            self.errors[name] += 1
            self._second(now_s)[1] += 1
            self.last_answer_s = now_s

    def call(self, outcome: str) -> None:
        if self.measuring:
            self.calls[outcome] += 1

    def recorded(self, cpu_s: float, open_loop: bool, unended: list[tuple[str, str]]) -> Recorded:
        last = self.last_answer_s or time.perf_counter()
        return Recorded(
            requests=self.requests,
            codes=self.codes,
            errors=self.errors,
            skipped=self.skipped,
            calls=self.calls,
            histogram=self.histogram.encode(),
            by_kind={kind: histogram.encode() for kind, histogram in self.by_kind.items()},
            send_lag=self.send_lag.encode() if open_loop else b"",
            service=self.service.encode() if open_loop else b"",
            timeline=[(s, n, e, h.encode()) for s, (n, e, h) in sorted(self._seconds.items())],
            elapsed_s=max(last - self.started_s, 1e-9),
            cpu_s=cpu_s,
            unended=unended,
        )

"""The dashboard's figures: the servers' own ``/metrics``, sampled when the dashboard is looked at (at most once a
second; the page asks again every few seconds), kept for the last :data:`KEEP` samples, and turned into rates.

| figure | from |
|---|---|
| calls per second | ``occ_requests_total{method="StartSession"}`` (a call begins with one) |
| requests per second | ``occ_requests_total``, every method |
| answers by result code | ``occ_requests_total`` by ``result_code``, since the server started |
| open sessions | ``occ_open_sessions`` |
| settlement lag | ``occ_settle_lag_entries`` + ``occ_settle_pending_entries`` (an ``occ settle --metrics-port``) |
| export outcomes | ``occ_export_outcomes_total`` by ``outcome`` (an ``occ export --metrics-port``) |
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable

import aiohttp
import msgspec
from prometheus_client.parser import text_string_to_metric_families

KEEP = 180
MIN_INTERVAL_S = 1.0
FETCH_TIMEOUT_S = 2.0


class Sample(msgspec.Struct, frozen=True):
    """One reading of every URL. Attributes: at: Unix seconds; values: (sample name, labels) → value."""

    at: float
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def total(self, name: str, **match: str) -> float | None:
        """The sum of ``name``'s series whose labels include ``match``; None when no URL reports it."""
        found = [value for (sample, labels), value in self.values.items()
                 if sample == name and set(match.items()) <= set(labels)]  # fmt: skip
        return sum(found) if found else None

    def by(self, name: str, label: str) -> dict[str, float]:
        grouped: dict[str, float] = {}
        for (sample, labels), value in self.values.items():
            if sample == name:
                key = dict(labels).get(label, "")
                grouped[key] = grouped.get(key, 0.0) + value
        return grouped


class View(msgspec.Struct, frozen=True, kw_only=True):
    """What the dashboard shows. Series are (seconds before now, value) points, oldest first."""

    calls_per_s: list[tuple[float, float]]
    requests_per_s: list[tuple[float, float]]
    open_sessions: list[tuple[float, float]]
    settle_lag: list[tuple[float, float]]
    answers: list[tuple[str, float]]
    exports: list[tuple[str, float]]
    errors: list[str]


class MetricsFeed:
    """Samples ``urls`` on demand and keeps the recent history."""

    def __init__(self, urls: Iterable[str]) -> None:
        self.urls = [url for url in urls if url]
        self.history: deque[Sample] = deque(maxlen=KEEP)
        self.errors: list[str] = []
        self._http: aiohttp.ClientSession | None = None

    async def view(self) -> View:
        if not self.history or time.time() - self.history[-1].at >= MIN_INTERVAL_S:
            await self._sample()
        now = time.time()
        samples = list(self.history)
        latest = samples[-1] if samples else Sample(now, {})
        return View(
            calls_per_s=_rates(samples, now, "occ_requests_total", method="StartSession"),
            requests_per_s=_rates(samples, now, "occ_requests_total"),
            open_sessions=_levels(samples, now, "occ_open_sessions"),
            settle_lag=_levels(samples, now, "occ_settle_lag_entries", "occ_settle_pending_entries"),
            answers=sorted(latest.by("occ_requests_total", "result_code").items()),
            exports=sorted(latest.by("occ_export_outcomes_total", "outcome").items()),
            errors=self.errors,
        )

    async def _sample(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S))
        values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        errors = []
        for url in self.urls:
            try:
                async with self._http.get(url) as response:
                    response.raise_for_status()
                    text = await response.text()
            except (aiohttp.ClientError, TimeoutError) as error:
                errors.append(f"{url}: {type(error).__name__} {error}".strip())
                continue
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    values[key] = values.get(key, 0.0) + sample.value
        self.errors = errors
        self.history.append(Sample(time.time(), values))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


def _rates(samples: list[Sample], now: float, name: str, **match: str) -> list[tuple[float, float]]:
    points = []
    for before, after in itertools.pairwise(samples):
        a, b = before.total(name, **match), after.total(name, **match)
        if a is not None and b is not None and after.at > before.at:
            points.append((after.at - now, max(b - a, 0.0) / (after.at - before.at)))  # a restart resets counters
    return points


def _levels(samples: list[Sample], now: float, *names: str) -> list[tuple[float, float]]:
    points = []
    for sample in samples:
        found = [value for value in (sample.total(name) for name in names) if value is not None]
        if found:
            points.append((sample.at - now, sum(found)))
    return points

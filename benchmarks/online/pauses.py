"""The server's pauses during a phase, from its Prometheus ``/metrics`` page read before and after the phase.

OCC observes how late its event loop wakes a task due every 5 ms (``occ_event_loop_lag_seconds``) and how long each
garbage collection takes (``occ_gc_pause_seconds`` by generation). The difference of the two histograms over a
phase gives: how many lag samples exceeded 5 ms (the "no stalls" target), the bucket the largest one fell in (its
upper bound is the largest pause reported: a histogram keeps no exact maximum), and the full collections that ran.
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

LAG = "occ_event_loop_lag_seconds"
GC = "occ_gc_pause_seconds"
STALL_S = 0.005
SCRAPE_TIMEOUT_S = 5.0



def scrape(url: str) -> dict[str, dict[float, float]]:
    """Cumulative bucket counts by ``le`` of the lag histogram (``lag``) and of each GC generation (``gc0`` …)."""
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as answer:
        text = answer.read().decode()
    found: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (LAG, GC):
            continue
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            key = "lag" if family.name == LAG else f"gc{sample.labels.get('generation', '')}"
            bound = float(sample.labels["le"])
            found.setdefault(key, {})[bound] = found.get(key, {}).get(bound, 0.0) + sample.value
    return found


def _counts(before: dict[float, float], after: dict[float, float]) -> list[tuple[float, int]]:
    """(upper bound, count in this bucket alone) over the window, in bound order."""
    bounds = sorted(after)
    cumulative = [after[b] - before.get(b, 0.0) for b in bounds]
    alone = [c - (cumulative[i - 1] if i else 0.0) for i, c in enumerate(cumulative)]
    return [(bound, int(count)) for bound, count in zip(bounds, alone, strict=True)]


def summarize(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> dict[str, Any]:
    """The phase's pauses: lag samples, those over 5 ms, the largest lag's bucket, full collections."""
    lag = _counts(before.get("lag", {}), after.get("lag", {}))
    if not lag:
        return {"status": "no occ_event_loop_lag_seconds on the metrics page"}
    over = [(bound, count) for bound, count in lag if count > 0]
    largest = over[-1][0] if over else 0.0
    previous = max((b for b, _ in lag if b < largest), default=0.0)
    shown = f"> {previous * 1000:g} ms" if math.isinf(largest) else f"{previous * 1000:g}–{largest * 1000:g} ms"
    full = _counts(before.get("gc2", {}), after.get("gc2", {}))
    return {
        "status": "measured",
        "lag_samples": sum(count for _, count in lag),
        "lag_over_5ms": sum(count for bound, count in lag if bound > STALL_S),
        "largest_lag_ms": "inf" if math.isinf(largest) else round(largest * 1000, 3),
        "largest_lag_shown": shown,
        "full_collections": sum(count for _, count in full),
        "full_collection_largest_ms": round(max((b for b, c in full if c > 0), default=0.0) * 1000, 3),
    }


def pause_window(url: str | None) -> tuple[Callable[[], None], Callable[[], dict[str, Any]]]:
    """A (start, stop) pair around a phase; stop returns :func:`summarize` (empty without a metrics URL)."""
    taken: dict[str, Any] = {}

    def start() -> None:
        if url:
            try:
                taken["before"] = scrape(url)
            except OSError as error:
                taken["error"] = str(error)

    def stop() -> dict[str, Any]:
        if not url:
            return {}
        if "before" not in taken:
            return {"status": f"metrics not read: {taken.get('error', 'no first sample')}"}
        try:
            return summarize(taken["before"], scrape(url))
        except OSError as error:
            return {"status": f"metrics not read: {error}"}

    return start, stop

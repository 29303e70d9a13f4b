"""The harness's new figures: the Stream knee, the pauses read from OCC's /metrics, and the issue's targets."""

from __future__ import annotations

import math

from benchmarks.online import report
from benchmarks.online.pauses import summarize


def stream_phase(rate: float, p99: float) -> dict:
    return {"offered_calls_per_s": rate, "latency_ms": {"p99": p99}}


def test_the_knee_is_interpolated_where_p99_crosses_50_ms():
    knee = report.knee([stream_phase(1500, 90), stream_phase(1000, 10)])  # any order
    assert knee["calls_per_s"] == 1250 and knee["shown"] == "1,250 calls/s"


def test_a_knee_outside_the_rates_measured_says_so():
    above = report.knee([stream_phase(1000, 10), stream_phase(2000, 20)])
    assert above["calls_per_s"] == 2000 and above["shown"].startswith("above 2,000")
    below = report.knee([stream_phase(1000, 80), stream_phase(2000, 900)])
    assert below["below_range"] and below["shown"].startswith("below 1,000")
    checks = report.targets({}, [], None, knee=below)
    assert [(c["name"], c["pass"]) for c in checks] == [("stream_knee", False)]


def test_pauses_are_the_difference_of_two_scrapes():
    bounds = [0.001, 0.005, 0.01, math.inf]
    before = {"lag": dict(zip(bounds, [10, 12, 12, 12], strict=True)),
              "gc2": dict(zip(bounds, [1, 1, 1, 1], strict=True))}  # fmt: skip
    after = {"lag": dict(zip(bounds, [110, 113, 115, 115], strict=True)),
             "gc2": dict(zip(bounds, [1, 2, 2, 2], strict=True))}  # fmt: skip
    pauses = summarize(before, after)
    assert pauses["lag_samples"] == 103 and pauses["lag_over_5ms"] == 2
    assert pauses["largest_lag_shown"] == "5–10 ms" and pauses["largest_lag_ms"] == 10.0
    assert pauses["full_collections"] == 1 and pauses["full_collection_largest_ms"] == 5.0


def test_the_no_stall_target_sums_every_phase():
    quiet = {"status": "measured", "lag_samples": 200, "lag_over_5ms": 0, "largest_lag_ms": 2.0,
             "largest_lag_shown": "1–2 ms"}  # fmt: skip
    stalled = quiet | {"lag_over_5ms": 3, "largest_lag_ms": 25.0, "largest_lag_shown": "10–25 ms"}
    (check,) = report.targets({}, [], None, pauses=[("a", quiet), ("b", stalled)])
    assert check["name"] == "pauses" and not check["pass"] and check["value"] == 3
    assert check["shown"] == "3 lag samples over 5 ms; largest 10–25 ms (b)"

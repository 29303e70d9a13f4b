"""Latency percentiles come from HdrHistogram and survive the trip between processes (encode, merge)."""

from __future__ import annotations

from benchmarks.online.recorder import Recorder, merged, quantiles_ms


def test_percentiles_of_a_known_distribution() -> None:
    recorder = Recorder()
    recorder.start()
    for latency_us in range(1, 10_001):  # 1 µs … 10 ms, uniformly
        recorder.answer("start", "SUCCESS", latency_us * 1000)
    quantiles = quantiles_ms(recorder.histogram)
    # Three significant digits: each value within 0.1 % of the exact order statistic.
    for name, exact_ms in (("p50", 5.0), ("p90", 9.0), ("p99", 9.9), ("p99.9", 9.99), ("max", 10.0)):
        assert abs(quantiles[name] - exact_ms) <= exact_ms * 0.001 + 0.001, name


def test_records_merge_across_processes_by_kind_code_and_second() -> None:
    parts = []
    for latency_ms in (1, 3):
        recorder = Recorder()
        recorder.answer("start", "SUCCESS", 99_000_000)  # warm-up: not measured
        recorder.start()
        for _ in range(100):
            recorder.answer("start", "SUCCESS", latency_ms * 1_000_000)
        recorder.answer("end", "CREDIT_LIMIT_REACHED", latency_ms * 1_000_000)
        recorder.error("UNAVAILABLE")
        parts.append(recorder.recorded(0.0, False, []))
    assert [part.requests for part in parts] == [101, 101]
    assert dict(parts[0].codes["start"]) == {"SUCCESS": 100}
    histogram = merged([part.histogram for part in parts])
    assert histogram.get_total_count() == 202
    assert quantiles_ms(histogram)["p50"] == 1.0 and abs(quantiles_ms(histogram)["p99"] - 3.0) <= 0.003
    assert merged([part.by_kind["end"] for part in parts]).get_total_count() == 2
    second, answered, errors, encoded = parts[0].timeline[0]
    assert (second, answered, errors) == (0, 101, 1) and merged([encoded]).get_total_count() == 101


def test_a_request_off_the_headline_keeps_its_count_but_not_its_latency() -> None:
    recorder = Recorder()
    recorder.start()
    recorder.answer("end", "SUCCESS", 2_000_000)
    recorder.answer("end_at_stop", "SUCCESS", 900_000_000, headline=False)  # the hard stop's burst
    part = recorder.recorded(0.0, False, [])
    assert part.requests == 2 and dict(part.codes["end_at_stop"]) == {"SUCCESS": 1}
    assert quantiles_ms(merged([part.histogram]))["max"] == 2.0
    assert abs(quantiles_ms(merged([part.by_kind["end_at_stop"]]))["max"] - 900.0) <= 0.9
    _, answered, _, encoded = part.timeline[0]
    assert answered == 2 and merged([encoded]).get_total_count() == 1

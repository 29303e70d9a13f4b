"""Benchmark of a full garbage collection in a serving worker's heap, before and after ``freeze_warm_heap``.

Run with ``.venv/bin/python -m benchmarks.bench_gc``. It builds the heap of an ``occ serve`` worker without serving —
every module a worker imports, and the example tariff loaded and compiled as the tariff holder keeps it — then
times ``gc.collect()`` (a full collection, what stalled the event loop for 24–36 ms under load) several times and
prints the median and the tracked objects; then freezes the heap as a serving worker does
(``occ.core.pauses.freeze_warm_heap``) and times the same collection again. The ratio is the figure; results go to
``benchmarks/results/gc.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path

import occ.api.server
import occ.app
import occ.server  # noqa: F401  (the worker's modules, imported for their objects)
from occ.core.pauses import GC_THRESHOLDS, freeze_warm_heap
from rating_engine import compile_tariff, load_tariff

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gc.json"


def full_collection_ms(rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_gc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="collections timed each way; the median is kept (9)")
    args = parser.parse_args(argv)
    tariff = compile_tariff(load_tariff(ROOT / "examples" / "tariff"))
    tracked = len(gc.get_objects())
    before_ms = full_collection_ms(args.rounds)
    frozen = freeze_warm_heap()
    after_ms = full_collection_ms(args.rounds)
    left = len(gc.get_objects())
    print(f"full collection, {tracked:,} tracked objects: {before_ms:.2f} ms (median of {args.rounds})")
    print(f"after freeze_warm_heap ({frozen:,} objects frozen, {left:,} left to scan): {after_ms * 1000:.0f} µs")
    print(f"after ÷ before: {after_ms / before_ms:.4f}; thresholds now {GC_THRESHOLDS}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"tracked": tracked, "full_collection_ms": round(before_ms, 3),
                                   "frozen": frozen, "after_freeze_ms": round(after_ms, 3),
                                   "tariff_hash": tariff.hash}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

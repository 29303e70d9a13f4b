"""Benchmark of the engine's rating paths: where the scalar path stops paying against the vectorised one.

Run with ``.venv/bin/python -m benchmarks.bench_rating_path`` (``--help`` for the options). For batches of 1 … 32
StartSession-like rows on the example tariff (voice, 60 units asked, credit enough for the ladder, and credit short
so that the exact grant is searched for) it prices the same rows with ``rate_scalar`` and ``rate_vectorised`` in
turn, several rounds interleaved, and prints the CPU time per batch of each (the best round: the least disturbed by
other work on the machine), their ratio and the largest batch size where the scalar path is cheaper; the engine's
threshold (``occ.core.rating.SCALAR_MAX_ROWS``) comes from this figure. Results go to
``benchmarks/results/rating_path.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from occ.core.rating import SCALAR_MAX_ROWS, Row, rate_scalar, rate_vectorised
from rating_engine import Call, Service, compile_tariff, load_tariff

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "rating_path.json"
SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
START = 1_780_000_000  # a weekday, 2026-05-28 20:26 UTC (off-peak in Europe/London)
DESTINATIONS = ("442079460000", "447700900123", "33142685300", "12125550100")
CREDITS = {"enough credit": 10**9, "short credit (exact search)": 3_000}


def cpu_us_per_batch(function, tariff, rows: list[Row], batches: int) -> float:
    started = time.process_time()
    for _ in range(batches):
        function(tariff, rows)
    return (time.process_time() - started) * 1e6 / batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_rating_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=300, help="batches per size, path and round (300)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best is kept (5)")
    args = parser.parse_args(argv)
    tariff = compile_tariff(load_tariff(ROOT / "examples" / "tariff"))
    results: dict[str, list[dict]] = {}
    for label, credit in CREDITS.items():
        print(f"{label}:\n  rows | scalar µs/batch | vectorised µs/batch | scalar ÷ vectorised")
        results[label] = []
        for size in SIZES:
            rows = [Row(i, 0, Call("retail", Service.VOICE, DESTINATIONS[i % 4], START, 0), 60, credit)
                    for i in range(size)]  # fmt: skip
            assert rate_scalar(tariff, rows) == rate_vectorised(tariff, rows)
            best = {"scalar": float("inf"), "vectorised": float("inf")}
            for _ in range(args.rounds):
                for name, function in (("scalar", rate_scalar), ("vectorised", rate_vectorised)):
                    best[name] = min(best[name], cpu_us_per_batch(function, tariff, rows, args.batches))
            ratio = best["scalar"] / best["vectorised"]
            results[label].append({"rows": size, **{f"{k}_cpu_us": round(v, 1) for k, v in best.items()},
                                   "ratio": round(ratio, 3)})  # fmt: skip
            print(f"  {size:4} | {best['scalar']:15,.0f} | {best['vectorised']:19,.0f} | {ratio:.2f}")
        cheaper = [row["rows"] for row in results[label] if row["ratio"] < 1]
        print(f"  the scalar path is cheaper up to {max(cheaper, default=0)} rows\n")
    crossover = min(max((r["rows"] for r in rows if r["ratio"] < 1), default=0) for rows in results.values())
    print(f"crossover (the smaller of the two): {crossover} rows; the engine's SCALAR_MAX_ROWS is {SCALAR_MAX_ROWS}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"sizes": results, "crossover_rows": crossover,
                                   "scalar_max_rows": SCALAR_MAX_ROWS}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The fault suite: ``python -m benchmarks.chaos`` (about 2 minutes on 2 cores; every trial bounded in count and time).

Kills each process of OCC in turn and lets it recover — ``occ settle`` SIGKILLed six times mid-drain, ``occ serve``
SIGKILLed under 200 concurrent callers, its embedded redis-server SIGKILLed after 1,000 top-ups — runs the ERP export
against a middleware that is down, then failing, stalling and dropping replies, and fuzzes every gRPC method with
hypothesis. Then it prints what was done and what was lost, duplicated or errored (all three must be 0):

    trial | done | lost | duplicated | errored

and writes ``benchmarks/results/chaos.json``. Only loopback addresses; everything runs in a temporary directory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from benchmarks.faults.edges import erp_faults, fuzz_grpc
from benchmarks.faults.trials import Row, kill_embedded_redis, kill_serve_under_load, kill_settle_mid_drain

RESULTS = Path(__file__).resolve().parent / "results" / "chaos.json"
BUDGET_S = 170.0  # trials not started by then are skipped (and say so)


def trials(quick: bool) -> list[tuple[str, Callable[[Path], Row]]]:
    scale = 0.2 if quick else 1.0
    return [
        ("settle", lambda d: kill_settle_mid_drain(d, calls=int(20_000 * scale))),
        ("serve", lambda d: kill_serve_under_load(d, callers=200)),
        ("redis", lambda d: kill_embedded_redis(d, top_ups_before=1000, top_ups_after=100)),
        ("erp", lambda d: erp_faults(d, documents=int(500 * scale))),
        ("fuzz", lambda d: fuzz_grpc(d, unary=int(1500 * scale), streams=int(150 * scale))),
    ]


def table(rows: list[Row]) -> str:
    lines = ["| trial | done | lost | duplicated | errored |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.trial} | {r.done:,} | {r.lost:,} | {r.duplicated:,} | {r.errored:,} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="run only these trials (settle, serve, redis, erp, fuzz)")
    parser.add_argument("--quick", action="store_true", help="smaller backlogs and fewer fuzzed requests")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON results [{RESULTS}]")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="occ-chaos-") as temp:
        for name, trial in trials(args.quick):
            if args.only and name not in args.only:
                continue
            if time.monotonic() - started > BUDGET_S:
                rows.append(Row(trial=f"{name}: skipped (over the {BUDGET_S:g} s budget)", errored=1))
                continue
            print(f"chaos: {name} …", file=sys.stderr, flush=True)
            began = time.monotonic()
            workdir = Path(temp) / name
            workdir.mkdir()
            try:
                row = trial(workdir)
            except Exception as error:  # a trial that cannot finish is a result too, not a crash of the suite
                row = Row(trial=name, errored=1, notes=[f"{type(error).__name__}: {error}"])
            row.seconds = round(time.monotonic() - began, 1)
            rows.append(row)
            print(f"chaos: {name} done in {row.seconds:g} s: {row.notes}", file=sys.stderr, flush=True)
    print(table(rows))
    print(f"\n{time.monotonic() - started:.0f} s in all")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_bytes(msgspec.json.format(msgspec.json.encode(rows)))
    return int(any(r.lost or r.duplicated or r.errored for r in rows))


if __name__ == "__main__":
    sys.exit(main())

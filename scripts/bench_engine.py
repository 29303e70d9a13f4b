#!/usr/bin/env python3
"""Time the charging engine alone (no gRPC): batches of starts, updates and ends through ``Engine.process``.

    .venv/bin/python scripts/bench_engine.py [--accounts N] [--batch N] [--rounds N]

A private redis-server on 127.0.0.1 (started and stopped here), the example tariff, ``--accounts`` accounts with
credit; each round sends one batch of starts (a second with the account already known, so without the read), then
updates, then ends, each ``--batch`` requests. Prints the median wall time per request of each kind over the rounds
and the median CPU time of this process per request (the engine's own work: Redis runs in its own process).
Bounded: at most ``--rounds`` rounds of three batches. Used to check that restructuring the engine costs nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from occ.app import App
from occ.core.requests import Kind, Quota, Work
from occ.settings import Settings
from occ.store.process import start_redis_server
from rating_engine import Service, normalize_number

ROOT = Path(__file__).resolve().parent.parent
MONDAY_PEAK_S = 1767603600
CALLED = "+442079460000"


def work(kind: Kind, account: str, session: str, number: int, *, used: int, requested: int) -> Work:
    return Work(kind, account, session_id=session, request_number=number, event_time_s=MONDAY_PEAK_S,
                now_ms=int(time.time() * 1000), called=CALLED, destination=normalize_number(CALLED, "44"),
                quotas=(Quota(100, Service.VOICE, requested, used),))  # fmt: skip


async def run(accounts: int, batch: int, rounds: int, redis_url: str) -> dict[str, tuple[float, float]]:
    settings = Settings.load(None, {}, redis_url=redis_url, tariff_dir=str(ROOT / "examples" / "tariff"), settle=False)
    app = App(settings)
    await app.start()
    try:
        names = [f"bench{i:05d}" for i in range(accounts)]
        for name in names:
            fields = {"currency": "EUR", "credit_limit": 0, "status": "ACTIVE", "plan": "retail", "tax_profile": ""}
            await app.store.write_account(name, "create", fields)
            await app.store.transact(name, key="open", kind="topup", amount_micros=10**12, ledger_code=1,
                                     description="")  # fmt: skip
        timings: dict[str, list[float]] = {"start": [], "update": [], "end": []}
        cpu: dict[str, list[float]] = {"start": [], "update": [], "end": []}
        for round_ in range(rounds):
            chosen = [names[(round_ * batch + i) % accounts] for i in range(batch)]
            pairs = [(account, f"r{round_}-{i}") for i, account in enumerate(chosen)]
            steps = [
                ("start", [work(Kind.START, a, s, 0, used=0, requested=60) for a, s in pairs]),
                ("update", [work(Kind.UPDATE, a, s, 1, used=60, requested=60) for a, s in pairs]),
                ("end", [work(Kind.END, a, s, 2, used=30, requested=0) for a, s in pairs]),
            ]
            for kind, works in steps:
                started, started_cpu = time.perf_counter(), time.process_time()
                results = await app.engine.process(works)
                timings[kind].append((time.perf_counter() - started) / batch * 1e6)
                cpu[kind].append((time.process_time() - started_cpu) / batch * 1e6)
                failed = [r for r in results if isinstance(r, Exception) or r.code != 2001]
                if failed:
                    raise SystemExit(f"{kind}: {len(failed)} requests failed, e.g. {failed[0]!r}")
        return {kind: (statistics.median(timings[kind]), statistics.median(cpu[kind])) for kind in timings}
    finally:
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server = start_redis_server(Path(directory))
        try:
            medians = asyncio.run(run(args.accounts, args.batch, args.rounds, server.url))
        finally:
            server.stop()
    print("  ".join(f"{kind} {wall:.1f} µs/request ({cpu:.1f} CPU)" for kind, (wall, cpu) in medians.items()))


if __name__ == "__main__":
    main()

"""Benchmark of settlement: draining a pre-filled backlog of stream entries into SQLite and PostgreSQL.

Run with ``.venv/bin/python benchmarks/bench_settle.py`` (``--help`` for the options). In one run it starts a
private redis-server (and a private PostgreSQL, unless ``--no-postgres``), and for each store and each backlog shape

- ``mix``: calls as the online core writes them (a ``session_charge`` then its ``session_close``, an SMS every ten
  calls, a top-up per account): about two entries per xDR;
- ``closes``: each call as its ``session_close`` alone: one entry per xDR, the figure the issue's target names,

fills the backlog, drains it with :class:`settlement.drain.Drain` (``drain_once``: claim, read, book, write,
acknowledge, trim) and reports entries/s and xDRs/s. Two ceilings are measured in the same run on the same data so
that the figure can be compared across machines: reading the backlog alone (XRANGE, same client settings) and
writing the same booked rows alone (the same INSERTs, no Redis). Results go to ``benchmarks/results/settle.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from postgres import PostgresServer  # noqa: E402  (tests/postgres.py: a private PostgreSQL)

from benchmarks.settle_backlog import fill_backlog  # noqa: E402
from occ.store.client import connect  # noqa: E402
from occ.store.keys import shard_keys  # noqa: E402
from occ.store.process import start_redis_server  # noqa: E402
from settlement.drain import Drain, DrainOptions  # noqa: E402
from settlement.entries import book, entry_key  # noqa: E402
from settlement.store.database import open_store  # noqa: E402
from settlement.store.migrate import upgrade  # noqa: E402
from settlement.stream_replies import fields_of  # noqa: E402
from settlement.writer import BatchWriter, Booked  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "settle.json"
TARGET_XDRS_PER_S = 30_000
TARGET_CPU_US_PER_ENTRY = 30
SHARDS = 256


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def read_ceiling(url: str) -> float:
    """Entries/s for reading every stream once with XRANGE in pages (no group bookkeeping, no booking)."""
    client = connect(url, decode=True)
    client.set_response_callback("XRANGE", lambda r, **_: r)
    started, n = time.perf_counter(), 0
    for shard in range(SHARDS):
        stream, after = shard_keys(shard)[0], "-"
        while page := await client.xrange(stream, min=after, max="+", count=2_000):
            n += len(page)
            after = "(" + page[-1][0]
            for _, flat in page:
                fields_of(flat)
    elapsed = time.perf_counter() - started
    await client.aclose()
    return n / elapsed


async def booked_rows(url: str) -> list[list[Booked]]:
    """The backlog booked as the drain books it, in batches of 10,000, for the write ceiling."""
    client = connect(url, decode=True)
    client.set_response_callback("XRANGE", lambda r, **_: r)
    batches: list[list[Booked]] = [[]]
    for shard in range(SHARDS):
        for entry_id, flat in await client.xrange(shard_keys(shard)[0]):
            fields = fields_of(flat)
            key = entry_key(shard, entry_id)
            ledger, xdrs = book(key, fields, 0)
            time_ms = int(fields["time_ms"])
            batches[-1].append(Booked(key, ledger, xdrs, (fields["account"], fields["currency"], time_ms)))
            if len(batches[-1]) == 10_000:
                batches.append([])
    await client.aclose()
    return batches


def write_ceiling(db_url: str, batches: list[list[Booked]]) -> float:
    """Entries/s for writing the booked rows alone, one transaction per batch, into an empty store."""
    engine = open_store(db_url)
    upgrade(engine)
    writer = BatchWriter(engine)
    started = time.perf_counter()
    n = sum(writer.write(batch).ledger_rows >= 0 and len(batch) for batch in batches)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return n / elapsed


def _drain_worker(url: str, db_url: str, consumer: str, ready, go, booked) -> None:
    """One worker process: set up, wait for the start signal, drain everything, report how many it booked and the
    CPU time (user + system, all its threads) the drain took."""

    async def work() -> tuple[int, float]:
        engine = open_store(db_url)
        options = DrainOptions(consumer=consumer, trim=False, claim_idle_s=3600)
        async with Drain(url, engine, shards=SHARDS, options=options) as drain:
            ready.release()
            await asyncio.to_thread(go.wait)
            started = time.process_time()
            await drain.drain_once()
            cpu_s = time.process_time() - started
        engine.dispose()
        return drain.booked, cpu_s

    booked.put(asyncio.run(work()))


def drain_with(workers: int, url: str, db_url: str) -> tuple[float, int, float]:
    """(seconds, entries booked, CPU seconds of the workers) for ``workers`` processes draining the backlog together,
    timed from a common start signal once every worker is connected (process start-up is not part of the figure)."""
    engine = open_store(db_url)
    upgrade(engine)
    engine.dispose()
    context = multiprocessing.get_context("spawn")
    ready, go, booked = context.Semaphore(0), context.Event(), context.Queue()
    processes = [context.Process(target=_drain_worker, args=(url, db_url, f"bench-{i}", ready, go, booked))
                 for i in range(workers)]  # fmt: skip
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    reports = [booked.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    return elapsed, sum(n for n, _ in reports), sum(cpu_s for _, cpu_s in reports)


async def one_case(redis_dir: Path, make_url, *, calls: int, accounts: int, shape: str, workers: list[int]) -> list:
    server = start_redis_server(redis_dir)
    cases = []
    try:
        client = connect(server.url)
        backlog = await fill_backlog(
            client, shards=SHARDS, accounts=accounts, calls=calls, close_only=shape == "closes"
        )
        read_per_s = await read_ceiling(server.url)
        write_per_s = write_ceiling(make_url(f"{shape}-ceiling"), await booked_rows(server.url))
        for n in workers:
            elapsed, booked, cpu_s = drain_with(n, server.url, make_url(f"{shape}-drain-{n}"))
            assert booked == backlog.entries, (booked, backlog.entries)
            for shard in range(SHARDS):  # deliver the same backlog again to the next run
                await client.xgroup_setid(shard_keys(shard)[0], "settlement", "0")
                await client.xgroup_delconsumer(shard_keys(shard)[0], "settlement", "bench-0")
            entries_per_s = backlog.entries / elapsed
            cases.append({
                "shape": shape,
                "workers": n,
                "entries": backlog.entries,
                "xdrs": backlog.xdrs,
                "ledger_rows": backlog.ledger_rows,
                "seconds": round(elapsed, 3),
                "entries_per_s": round(entries_per_s),
                "xdrs_per_s": round(backlog.xdrs / elapsed),
                "read_ceiling_entries_per_s": round(read_per_s),
                "write_ceiling_entries_per_s": round(write_per_s),
                "of_read_ceiling": round(entries_per_s / read_per_s, 3),
                "of_write_ceiling": round(entries_per_s / write_per_s, 3),
                "worker_cpu_us_per_entry": round(cpu_s / booked * 1e6, 1),
            })  # fmt: skip
        await client.aclose()
    finally:
        server.stop()
    return cases


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls in each backlog (default 200,000)")
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts (default 10,000)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--workers", type=lambda t: [int(n) for n in t.split(",")], default=[1, 2],
                        help="worker process counts to measure (default 1,2)")  # fmt: skip
    parser.add_argument("--shapes", type=lambda t: t.split(","), default=["closes", "mix"],
                        help="backlog shapes to measure (default closes,mix)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    postgres = None if args.no_postgres else PostgresServer()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="occ-bench-settle-") as tmp:
            work = Path(tmp)
            stores = [("sqlite", lambda name: f"sqlite:///{work / name}.sqlite3")]
            if postgres is not None:
                stores.append(("postgresql", lambda _name: postgres.new_database()))
            for store, make_url in stores:
                for shape in args.shapes:
                    progress(f"{store}, {shape}: {args.calls:,} calls over {args.accounts:,} accounts")
                    for case in await one_case(work / f"redis-{store}-{shape}", make_url, calls=args.calls,
                                               accounts=args.accounts, shape=shape, workers=args.workers):  # fmt: skip
                        results.append({"store": store, **case})
                        progress(f"  {case['workers']} worker(s): {case['entries_per_s']:,} entries/s, "
                                 f"{case['xdrs_per_s']:,} xDRs/s ({case['of_read_ceiling']:.0%} of reading alone, "
                                 f"{case['of_write_ceiling']:.0%} of writing alone), "
                                 f"{case['worker_cpu_us_per_entry']} µs of worker CPU per entry")  # fmt: skip
    finally:
        if postgres is not None:
            postgres.stop()

    print("\n| store | backlog | workers | entries | xDRs/s | entries/s | of read ceiling | of write ceiling "
          "| worker CPU per entry |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['store']} | {r['shape']} | {r['workers']} | {r['entries']:,} | {r['xdrs_per_s']:,} | "
              f"{r['entries_per_s']:,} | {r['of_read_ceiling']:.0%} | {r['of_write_ceiling']:.0%} "
              f"| {r['worker_cpu_us_per_entry']} µs |")  # fmt: skip
    sqlite_closes = max((r for r in results if r["store"] == "sqlite" and r["shape"] == "closes"),
                        key=lambda r: r["xdrs_per_s"])  # fmt: skip
    met = sqlite_closes["xdrs_per_s"] >= TARGET_XDRS_PER_S
    print(f"\ntarget ≥ {TARGET_XDRS_PER_S:,} xDRs/s into SQLite: {sqlite_closes['xdrs_per_s']:,} with "
          f"{sqlite_closes['workers']} worker(s) "
          f"({'met' if met else 'missed'})")  # fmt: skip
    one = [r for r in results if r["store"] == "sqlite" and r["shape"] == "closes" and r["workers"] == 1]
    if one:
        cpu_us = one[0]["worker_cpu_us_per_entry"]
        print(f"target ≤ {TARGET_CPU_US_PER_ENTRY} µs of CPU per booked entry in one process (SQLite, closes): "
              f"{cpu_us} µs ({'met' if cpu_us <= TARGET_CPU_US_PER_ENTRY else 'missed'})")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "platform": platform.platform()}
    args.output.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

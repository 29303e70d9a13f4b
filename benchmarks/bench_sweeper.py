"""Benchmark of the sweeper's cost to the event loop it shares with the charging path.

Run with ``.venv/bin/python benchmarks/bench_sweeper.py`` (``--help`` for the options). It starts a private
redis-server, fills the 256 shards' deadline zsets with open sessions (none expired: the steady state the sweeper
looks at every second), then measures in one run:

- the baseline: a pipeline of ZRANGEBYSCORE + ZCARD over every shard, as every worker's sweeper did before;
- a tick of the sweeper (``Sweeper.tick``: one ``sweep.lua`` call over the next 32 shards);
- a full pass (``Sweeper.sweep_once``: every shard, 8 calls).

For each: client CPU per run (``time.process_time``, no other task running); the longest step of the event loop
(one callback: the loop can run nothing else meanwhile) in CPU time of the loop's thread, which a busy machine
does not inflate; and, beside a probe task that sleeps 0.5 ms at a time, the longest wall-clock pause the probe saw,
with the same probe on an idle loop as the control (on a shared machine the OS's own pauses show there). The loop
is asyncio's own (its callbacks can be timed one by one; uvloop's cannot). Results go to
``benchmarks/results/sweeper.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from benchmarks.online.machine import progress  # noqa: E402
from occ.core.sweeper import Sweeper  # noqa: E402
from occ.store import keys  # noqa: E402
from occ.store.client import connect  # noqa: E402
from occ.store.process import start_redis_server  # noqa: E402
from occ.store.scripts import Store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "sweeper.json"
SHARDS = 256
PROBE_S = 0.0005
TARGET_PAUSE_MS = 5.0


async def fill(client, sessions: int, now_ms: int) -> None:
    """``sessions`` open sessions spread over the shards, deadlines an hour ahead (a session hash each)."""
    pipe = client.pipeline(transaction=False)
    for n in range(sessions):
        shard = n % SHARDS
        session_id = f"bench-{n}"
        pipe.zadd(keys.shard_keys(shard)[1], {session_id: now_ms + 3_600_000})
        pipe.hset(f"{keys.PREFIX}:{keys.tag(shard)}:sess:{session_id}", "account", f"acct{n}")
        if len(pipe) >= 10_000:
            await pipe.execute()
    await pipe.execute()


async def baseline_sweep(client, now_ms: int, limit: int = 512) -> int:
    """What every worker's sweeper did each second before: 512 commands in one pipeline."""
    pipe = client.pipeline(transaction=False)
    for shard in range(SHARDS):
        deadlines = keys.shard_keys(shard)[1]
        pipe.zrangebyscore(deadlines, "-inf", now_ms, start=0, num=limit)
        pipe.zcard(deadlines)
    replies = await pipe.execute()
    return sum(replies[1::2])


async def idle() -> None:
    """No sweep at all: the pauses the probe sees then are the machine's (other processes, the OS), not ours."""


class StepTimer:
    """The longest event-loop step (one callback), in CPU time of the loop's thread, while ``timing``."""

    def __init__(self) -> None:
        self.longest_s = 0.0
        self.timing = False
        run = asyncio.events.Handle._run

        def timed(handle: asyncio.events.Handle) -> None:
            if not self.timing:
                return run(handle)
            started = time.thread_time()
            try:
                return run(handle)
            finally:
                self.longest_s = max(self.longest_s, time.thread_time() - started)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]


STEPS = StepTimer()


async def measure(run, runs: int) -> dict[str, float]:
    """CPU per run and the longest loop step (alone), then the longest pause a probe task saw beside the runs."""
    await run()  # warm: scripts loaded, connections open
    STEPS.longest_s, STEPS.timing = 0.0, True
    started = time.process_time()
    for _ in range(runs):
        await run()
    cpu_ms = (time.process_time() - started) / runs * 1000
    STEPS.timing = False

    longest = 0.0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal longest
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(PROBE_S)
            longest = max(longest, time.perf_counter() - before - PROBE_S)

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.01)
    for _ in range(runs):
        await run()
        await asyncio.sleep(0.002)  # the probe runs between runs too, as the hot path does between sweeps
    done.set()
    await task
    return {"cpu_ms_per_run": round(cpu_ms, 3), "longest_step_cpu_ms": round(STEPS.longest_s * 1000, 3),
            "longest_probe_pause_ms": round(longest * 1000, 3)}  # fmt: skip


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000, help="open sessions (default 100,000)")
    parser.add_argument("--runs", type=int, default=50, help="runs of each method (default 50)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="occ-bench-sweeper-") as tmp:
        server = start_redis_server(Path(tmp))
        client = connect(server.url)
        try:
            now_ms = int(time.time() * 1000)
            progress(f"{args.sessions:,} open sessions over {SHARDS} shards")
            await fill(client, args.sessions, now_ms)
            sweeper = Sweeper(Store(client, shards=SHARDS, cluster=False), interval_s=1.0)
            methods = {
                "idle: no sweep (this machine's own pauses)": idle,
                "baseline: ZRANGEBYSCORE + ZCARD pipeline over 256 shards": lambda: baseline_sweep(client, now_ms),
                "tick: one sweep.lua call over 32 shards": lambda: sweeper.tick(now_ms),
                "full pass: sweep.lua over 256 shards (8 calls)": lambda: sweeper.sweep_once(now_ms),
            }
            results = {}
            for name, run in methods.items():
                results[name] = await measure(run, args.runs)
                progress(f"  {name}: {results[name]}")
        finally:
            await client.aclose()
            server.stop()
    base = results["baseline: ZRANGEBYSCORE + ZCARD pipeline over 256 shards"]
    print("\n| method | client CPU per run | × baseline | longest loop step (CPU) | longest probe pause (wall) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        ratio = r["cpu_ms_per_run"] / base["cpu_ms_per_run"]
        print(f"| {name} | {r['cpu_ms_per_run']:.3f} ms | {ratio:.2f} | {r['longest_step_cpu_ms']:.2f} ms "
              f"| {r['longest_probe_pause_ms']:.2f} ms |")  # fmt: skip
    worst = max(results[name]["longest_step_cpu_ms"] for name in results if name.startswith(("tick", "full")))
    print(f"\ntarget: no event-loop pause over {TARGET_PAUSE_MS} ms from the sweeper: its longest loop step "
          f"{worst:.2f} ms of CPU ({'met' if worst <= TARGET_PAUSE_MS else 'missed'})")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"sessions": args.sessions, "runs": args.runs, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

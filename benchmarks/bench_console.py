"""Benchmark of the operator console: every page's render time with 100,000 accounts, 1,000,000 xDRs and 10,000
invoices in the store (target: under 200 ms each).

Run with ``.venv/bin/python benchmarks/bench_console.py`` (``--help`` for the options). In one run it

1. fills the stores (``benchmarks/console_store.py``; a SQLite store already filled in ``--dir`` is reused, Redis is
   a private redis-server filled every run);
2. starts ``occ serve`` (no settlement worker, no console of its own) and ``occ console`` on free loopback ports,
   and signs in with an admin token;
3. requests every page ``--repeat`` times in turn and takes the median and the 95th percentile of each page's
   round trip; the baseline is the sign-in page, a template with no data, measured in the same rounds;

prints the figures with each page's ratio to the baseline and writes them to ``benchmarks/results/console.json``.
Times are wall-clock round trips over loopback (client and console share the machine's cores): compare the
ratios across machines, the milliseconds against the 200 ms target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import select

from benchmarks.console_store import ACCOUNTS, account_id, counts, fill_redis, fill_sql
from occ.store.process import start_redis_server
from settlement.store.schema import invoices, outbox

REPO = Path(__file__).resolve().parent.parent
OCC = [sys.executable, "-c", "from occ.cli import main; main()"]
TARGET_MS = 200.0
BASELINE = "sign-in page (no data)"


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pages(engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Each page of the console (name → path), on rows in the middle of the store."""
    with engine.connect() as connection:
        invoice = connection.execute(select(invoices.c.id).order_by(invoices.c.id).offset(5_000).limit(1)).scalar()
        document = connection.execute(select(outbox.c.id).order_by(outbox.c.id).offset(5_000).limit(1)).scalar()
    billed = account_id(4_321)
    return {
        BASELINE: "/sign-in",
        "dashboard": "/",
        "dashboard, live part": "/dashboard/live",
        "accounts, first page": "/accounts",
        "accounts, prefix search": "/accounts?prefix=acc0777",
        "accounts, a page in the middle": f"/accounts?page_token={account_id(ACCOUNTS // 2)}",
        "account (ledger, balance chart)": f"/accounts/{billed}",
        "sessions": "/sessions",
        "xDRs, newest": "/xdrs",
        "xDRs of an account and period": f"/xdrs?account={billed}&period=2026-01",
        "xDRs by status and period": "/xdrs?status=BILLED&period=2026-01",
        "xDRs by status, none match": "/xdrs?status=RAW_EXCEPTED",
        "tariffs": "/tariffs",
        "invoices, newest": "/invoices",
        "invoices by state": "/invoices?state=COMPLETE",
        "invoices of an account": f"/invoices?account={billed}",
        "invoice (statement)": f"/invoices/{invoice}",
        "ERP outbox, newest": "/outbox",
        "ERP outbox, REJECTED": "/outbox?state=REJECTED",
        "outbox document": f"/outbox/{document}",
    }


def sign_in(client: httpx.Client, token: str) -> None:
    form = client.get("/sign-in").text
    csrf = re.search(r'name="csrf"\s+value="([^"]+)"', form)
    if csrf is None:
        raise SystemExit("no CSRF token on the sign-in page")
    answer = client.post("/sign-in", data={"csrf": csrf.group(1), "token": token})
    if answer.status_code >= 400 or "sign-in" in str(answer.url):
        raise SystemExit(f"sign-in failed: {answer.status_code} {answer.url}")


def measure(client: httpx.Client, paths: dict[str, str], repeat: int) -> dict[str, list[float]]:
    """Each page ``repeat`` times, the pages in turn (so a busy moment of the machine hits them alike)."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for name, path in paths.items():  # once first: warm caches, and fail early on a page that does not answer 200
        answer = client.get(path)
        if answer.status_code != 200:
            raise SystemExit(f"{name}: GET {path} answered {answer.status_code}: {answer.text[:300]}")
    for _ in range(repeat):
        for name, path in paths.items():
            started = time.perf_counter()
            answer = client.get(path)
            times[name].append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="requests per page (20)")
    parser.add_argument("--dir", type=Path, help="keep (and reuse) the filled SQLite store here")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="occ-bench-console-"))
    directory.mkdir(parents=True, exist_ok=True)
    engine = fill_sql(directory / "occ.sqlite3", say)
    redis = start_redis_server(Path(tempfile.mkdtemp(prefix="occ-bench-console-redis-")))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(fill_redis(redis.url, say))
        results = run_console(directory, redis.url, engine, processes, args.repeat)
        results["store"] = dict(zip(("accounts", "xdrs", "invoices"), counts(engine), strict=True))
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.stop()
        engine.dispose()
    out = Path(__file__).resolve().parent / "results" / "console.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if results["all_under_target"] else 1


def run_console(directory: Path, redis_url: str, engine, processes: list[subprocess.Popen[bytes]],  # type: ignore[no-untyped-def]
                repeat: int) -> dict[str, object]:  # fmt: skip
    data_dir = directory / "data"
    data_dir.mkdir(exist_ok=True)
    port, admin_port, console_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OCC_")}
    env.update(OCC_DATA_DIR=str(data_dir), OCC_REDIS_URL=redis_url, OCC_DB_URL=f"sqlite:///{directory / 'occ.sqlite3'}",
               OCC_SETTLE="false", OCC_CONSOLE_LISTEN="", OCC_SHARDS="256", PYTHONPATH=str(REPO))  # fmt: skip
    token = subprocess.run([*OCC, "token", "create", "bench-console", "--role", "admin", "--replace"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()[0]  # fmt: skip
    with (directory / "serve.log").open("wb") as log:
        processes.append(subprocess.Popen(
            [*OCC, "serve", "--port", str(port), "--metrics-port", str(metrics_port), "--admin-listen",
             f"127.0.0.1:{admin_port}", "--tariff", str(REPO / "examples" / "tariff")],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))  # fmt: skip
    with (directory / "console.log").open("wb") as log:
        processes.append(subprocess.Popen(
            [*OCC, "console", "--listen", f"127.0.0.1:{console_port}", "--admin-listen", f"127.0.0.1:{admin_port}",
             "--metrics-port", str(metrics_port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))  # fmt: skip
    base = f"http://127.0.0.1:{console_port}"
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as client:
        while True:
            try:
                if client.get("/sign-in").status_code == 200 and subprocess.run(
                    [*OCC, "health", "--server", f"127.0.0.1:{port}"], env=env, capture_output=True
                ).returncode == 0:  # fmt: skip
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit(f"the console or the server did not start; see {directory}/*.log")
            time.sleep(0.2)
        sign_in(client, token)
        paths = pages(engine)
        say(f"measuring {len(paths)} pages × {repeat} on {base}")
        times = measure(client, paths, repeat)
    return report(times, paths, repeat)


def report(times: dict[str, list[float]], paths: dict[str, str], repeat: int) -> dict[str, object]:
    def p95(values: list[float]) -> float:
        return sorted(values)[max(0, round(0.95 * len(values)) - 1)]

    baseline = statistics.median(times[BASELINE])
    rows = {}
    print(f"\n{'page':<42} {'median ms':>10} {'p95 ms':>8} {'× baseline':>11}  path")
    for name, values in times.items():
        median = statistics.median(values)
        rows[name] = {"path": paths[name], "median_ms": round(median, 1), "p95_ms": round(p95(values), 1),
                      "vs_baseline": round(median / baseline, 1)}  # fmt: skip
        flag = "" if p95(values) < TARGET_MS else "  OVER TARGET"
        print(f"{name:<42} {median:>10.1f} {p95(values):>8.1f} {median / baseline:>10.1f}×  {paths[name]}{flag}")
    under = all(row["p95_ms"] < TARGET_MS for row in rows.values())  # type: ignore[operator]
    print(f"\nevery page's p95 under {TARGET_MS:.0f} ms: {'yes' if under else 'NO'}")
    return {"repeat": repeat, "target_ms": TARGET_MS,
            "baseline": BASELINE, "pages": rows, "all_under_target": under, "python": platform.python_version(),
            "cpus": os.cpu_count()}  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())

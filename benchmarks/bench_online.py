"""OCC's load-testing harness: ceilings, a softswitch simulator, correctness, a report and plots, in one run.

Run ``occ bench`` or ``.venv/bin/python -m benchmarks.bench_online`` (``--help`` for the options). Phases
(``--phases``, all by default):

``redis``        Redis's own limit for the reservation script: ``redis-benchmark`` calling ``session.lua`` with a
                 realistic start on a private redis-server (``online/redis_ceiling.py``).
``echo``         the gRPC framework's ceiling: the echo server (same contract, options and framing, canned
                 answers) under closed-loop unary and ``Stream`` ``StartSession`` and open-loop Poisson at
                 ``--rate`` requests/s (``online/startsession.py``); and, when h2load is installed, its peak.
``occ``          the same three phases against OCC (every request a real reservation), and its h2load peak.
``softswitch``   the softswitch simulator (``online/softswitch.py``): open-loop Poisson calls at each rate of
                 ``--calls-rates`` (unary), one phase over ``Stream`` and, with ``--calls-closed N``, a closed loop
                 of N calls at a time; calls are Authorize → StartSession → UpdateSession … → EndSession, with
                 messages, and some accounts short of credit.
``knee``         the softswitch over ``Stream`` at each rate of ``--knee-rates``: the knee is the offered rate
                 where p99 crosses 50 ms (interpolated between the two phases around it).
``scaling``      closed-loop unary ``StartSession`` against the echo server and OCC started afresh with each
                 worker count of ``--scaling-workers`` (1 and 2): req/s and server CPU per request side by side.
``correctness``  after the load: no account below −credit limit, every started session ended or left to the
                 sweeper with a deadline, then ``occ settle --once`` and ``occ reconcile`` where this ``occ`` has
                 them (``online/correctness.py``).

OCC is started by the harness (``occ serve`` with its embedded Redis, its settlement worker — off with
``--no-settle-worker`` — and the example tariff, in a temporary data dir) unless ``--target`` names one already
running on this machine (loopback only; ``--server-pid`` for its CPU). Every phase is bounded in time and in
requests; the run stops by itself.

Output, in ``--results-dir`` (default ``benchmarks/results/online/``): ``online.json`` (every figure),
``summary.md`` (the Markdown tables the README's performance section shows) and the plots
``throughput_over_time.png``, ``latency_over_time.png`` and ``latency_vs_load.png``. Progress goes to stderr.

Targets (issue 13; informational: a missed target does not fail the run): server CPU per unary StartSession ≤ 1.6 ×
the echo server's, unary OCC ≥ 70 % and Stream OCC ≥ 75 % of the echo ceilings (req/s), open loop at 1,000
StartSession/s with p99 ≤ 5 ms and p99.9 ≤ 15 ms, the unary softswitch at 1,000 calls/s keeping up (arrivals served
as offered) with p99 ≤ 25 ms, the Stream knee above 1,500 calls/s, no event-loop pause over 5 ms in any OCC phase
(``online/pauses.py``, from OCC's ``/metrics``), no correctness violation. The exit status is 1 when errors dominate
a phase or a correctness check fails.

Fairness on a small machine: the load generator runs in its own process(es) and shares the cores with the server,
whose CPU per request (server process tree, Redis included, from ``/proc``) is reported next to every ratio, as it
does not depend on the load generator's own cost. h2load (C) costs much less per request than the Python load
processes, which is why its peak figure is higher.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.online import correctness, diameter_phase, h2load, redis_ceiling, replicas, report
from benchmarks.online.accounts import AdminTarget, ceiling_accounts, create_accounts, softswitch_accounts
from benchmarks.online.loadgen import Workload
from benchmarks.online.machine import (
    QUIET_BUSY_SHARE,
    check_loopback,
    free_port,
    machine_busy,
    machine_info,
    progress,
)
from benchmarks.online.measure import Summary, cpu_window, run_measured
from benchmarks.online.servers import (
    ECHO_SERVER,
    OCC,
    ROOT,
    SERVER_START_TIMEOUT_S,
    External,
    Server,
    occ_commands,
    running,
    wait_until_serving,
)
from benchmarks.online.softswitch import CallMix
from benchmarks.online.traffic import Destinations

RESULTS_DIR = ROOT / "benchmarks" / "results" / "online"
TARIFF = ROOT / "examples" / "tariff"
PHASES = ("redis", "echo", "occ", "softswitch", "knee", "diameter", "correctness", "scaling")
PORT_ATTEMPTS = 3  # occ serve started on fresh free ports again when another program took one meanwhile
# Called parties of the ceiling phases: UK fixed, UK mobile, EU and world destinations of the example tariff.
CALLED = ("+442079460000", "+442079460123", "+441614960000", "+447700900123", "+447911123456", "+33142685300",
          "+34912345678", "+4930123456", "+12125550100", "+61298765432")  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="occ bench", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--phases", default=",".join(PHASES), help=f"comma-separated phases to run (default {','.join(PHASES)})")
    add("--seconds", type=float, default=8.0, help="measured seconds per phase (default 8)")
    add("--quick", action="store_true", help="2-second phases")
    add("--target", help="host:port of a running OCC on loopback (default: start one)")
    add("--server-pid", type=int, help="with --target: the server's pid, for its CPU figures")
    add("--admin-target", default="127.0.0.1:50052", help="with --target: its Admin listener (127.0.0.1:50052)")
    add("--admin-token", default="", help="with --target: an Admin token of role admin (default $OCC_TOKEN)")
    add("--workers", type=int, default=1, help="server processes, echo and OCC alike (default 1)")
    add("--no-settle-worker", action="store_true",
        help="start occ serve with --no-settle: the online path alone, without its settlement worker")  # fmt: skip
    add("--loadgen-procs", type=int, default=1, help="load generator processes (default 1)")
    add("--channels", type=int, help="TCP connections per load process (default 2 per server worker)")
    add("--concurrency", type=int, default=64, help="ceiling: unary calls in flight, all processes (64)")
    add("--streams", type=int, default=4, help="ceiling: streams per load process; softswitch: per channel (4)")
    add("--window", type=int, default=16, help="ceiling: messages in flight per stream (16)")
    add("--rate", type=float, default=report.TARGET_RATE, help="ceiling: open-loop StartSession/s (1,000)")
    add("--max-requests", type=int, default=2_000_000, help="cap per phase, requests or arrivals (2,000,000)")
    add("--accounts", type=int, default=1000, help="accounts of the ceiling phases and of the softswitch (1,000)")
    add("--calls-rates", default="250,500,1000", help="softswitch open-loop calls/s, one unary phase each")
    add("--calls-stream-rate", type=float, default=500.0, help="softswitch calls/s over Stream (0: none; 500)")
    add("--knee-rates", default="1000,1500,2000", help="knee: softswitch calls/s over Stream, one phase each")
    add("--scaling-workers", default="1,2", help="scaling: server worker counts, echo and OCC alike (1,2)")
    add("--calls-closed", type=int, default=0, help="softswitch closed loop: calls at a time per process (0: none)")
    add("--mean-call-s", type=float, default=90.0, help="mean call holding time, simulated seconds (90)")
    add("--max-call-s", type=int, default=600, help="longest call, simulated seconds (600)")
    add("--time-scale", type=float, default=30.0, help="simulated seconds per wall second (30)")
    add("--message-share", type=float, default=0.1, help="share of arrivals that are messages (0.1)")
    add("--poor-share", type=float, default=0.05, help="share of softswitch accounts short of credit (0.05)")
    add("--drain-s", type=float, default=5.0, help="wall seconds after the arrivals by which calls are ended (5)")
    add("--diameter-concurrency", type=int, default=16, help="diameter: calls in flight per transport (16)")
    add("--diameter-port", type=int, default=0, help="with --target: the running OCC's Diameter port (it must "
        f"allow {diameter_phase.CLIENT_HOST}=127.0.0.1 as a peer)")  # fmt: skip
    add("--h2load-seconds", type=float, default=5.0, help="seconds of each h2load peak run (5; 0: none)")
    add("--redis-requests", type=int, default=50_000, help="redis-benchmark starts per batch size (50,000)")
    add("--repeat", type=int, default=1, help="runs per ceiling phase: best req/s of the closed loops, median p99")
    add("--wait-quiet", type=float, default=0.0, metavar="SECONDS", help="wait up to this long for a quiet machine")
    add("--seed", type=int, default=1, help="seed of every random draw (1)")
    add("--results-dir", type=Path, default=RESULTS_DIR, help=f"where results go (default {RESULTS_DIR})")
    add("--redis-appendfsync", choices=("everysec", "always"), default="everysec",
        help="OCC's Redis AOF fsync policy (default everysec; always: no acknowledged write lost in a crash)")
    add("--replicas", type=int, default=0,
        help="serve OCC on a Redis of the harness's own with this many replicas, not the embedded one (0)")
    add("--min-replicas-acked", type=int, default=0,
        help="OCC waits (WAIT) for this many replicas after each write batch; needs --replicas (0)")  # fmt: skip
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))}: choose from {', '.join(PHASES)}")
    if args.quick:
        args.seconds = 2.0
    args.channels = args.channels or 2 * args.workers
    try:
        args.calls_rates = [float(rate) for rate in args.calls_rates.split(",") if rate.strip()]
        args.knee_rates = [float(rate) for rate in args.knee_rates.split(",") if rate.strip()]
        args.scaling_workers = [int(count) for count in args.scaling_workers.split(",") if count.strip()]
        if args.target:
            check_loopback(args.target)
            check_loopback(args.admin_target)
    except ValueError as error:
        parser.error(str(error))
    counts = ("workers", "loadgen_procs", "channels", "concurrency", "streams", "window", "max_requests", "accounts",
              "repeat")  # fmt: skip
    for name in counts:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 <= args.min_replicas_acked <= args.replicas <= 4:
        parser.error("--replicas must be 0–4 and --min-replicas-acked at most --replicas")
    if not 0 < args.seconds <= 600 or not 0 < args.rate <= 100_000 or not 0 <= args.drain_s <= 120:
        parser.error("--seconds must be in (0, 600], --rate in (0, 100,000] and --drain-s in [0, 120]")
    if any(not 0 < rate <= 100_000 for rate in [*args.calls_rates, *args.knee_rates]):
        parser.error("--calls-rates and --knee-rates must be in (0, 100,000]")
    if any(not 1 <= count <= 64 for count in args.scaling_workers):
        parser.error("--scaling-workers must be counts in 1 … 64")
    if any(not 0 < rate <= 100_000 for rate in args.calls_rates) or not 0 <= args.message_share <= 1:
        parser.error("--calls-rates must be in (0, 100,000] and --message-share in [0, 1]")
    return args


def run_ceiling_phases(pid: int | None, label: str, base: Workload, args: argparse.Namespace,
                       metrics_url: str | None = None) -> dict[str, Summary]:  # fmt: skip
    """Unary, Stream and open-loop StartSession, each ``--repeat`` times: the closed loops keep their best run (highest
    req/s), the open loop its median run by p99; every run's headline figures stay in ``runs``."""
    workloads = {
        "unary": replace(base, mode="unary", concurrency=max(1, args.concurrency // args.loadgen_procs)),
        "stream": replace(base, mode="stream", concurrency=args.window, streams=args.streams),
        "open": replace(base, mode="open", rate=args.rate, concurrency=1),
    }
    phases = {}
    for mode, workload in workloads.items():
        runs = []
        for run in range(args.repeat):
            name = f"{label} {mode}" + (f" (run {run + 1} of {args.repeat})" if args.repeat > 1 else "")
            # Distinct session ids in every phase and run: a repeated (session, request number) would be a duplicate.
            tagged = replace(workload, tag=f"{base.tag}{mode[0]}{run}")
            runs.append(run_measured(pid, name, tagged, args.wait_quiet, metrics_url))
        if mode == "open":
            chosen = sorted(runs, key=lambda summary: summary["latency_ms"]["p99"])[(len(runs) - 1) // 2]
            chosen["offered_per_s"] = args.rate
        else:
            chosen = max(runs, key=lambda summary: summary["throughput_per_s"])
        if len(runs) > 1:
            chosen["runs"] = [{"throughput_per_s": s["throughput_per_s"], "p99_ms": s["latency_ms"]["p99"]}
                              for s in runs]  # fmt: skip
        phases[mode] = chosen
    return phases


def run_peak(target: str, pid: int | None, subscriber: str, args: argparse.Namespace) -> dict[str, object]:
    if args.h2load_seconds <= 0:
        return {"status": "skipped", "reason": "--h2load-seconds 0"}
    if not h2load.installed():
        progress("h2load not installed: peak mode skipped")
        return {"status": "skipped", "reason": "h2load not installed: peak mode skipped"}
    progress(f"h2load peak against {target}: Authorize, {args.h2load_seconds:g} s …")
    start, stop = cpu_window(pid)
    start()
    request = h2load.authorize_request(subscriber, CALLED[0])
    result = h2load.measure(target, request, seconds=args.h2load_seconds, clients=args.channels, streams=64)
    window = stop()
    done = int(result.get("done", 0))
    if "server_cpu_s" in window and done:
        result["server_cpu_us_per_request"] = round(window["server_cpu_s"] * 1e6 / done, 1)
    progress(f"  {result.get('requests_per_s', 0):,.0f} req/s ({result['status']}, gRPC check {result['grpc_check']})")
    return result


def softswitch_base(target: str, subscribers: tuple[str, ...], args: argparse.Namespace) -> Workload:
    mix = CallMix(
        destinations=Destinations.from_tariff(TARIFF, "retail"),
        mean_call_s=args.mean_call_s,
        max_call_s=args.max_call_s,
        time_scale=args.time_scale,
        message_share=args.message_share,
    )
    return Workload(target=target, mode="calls", processes=args.loadgen_procs, seconds=args.seconds,
                    max_requests=args.max_requests, concurrency=1, channels=args.channels, subscribers=subscribers,
                    warmup_s=0.0, seed=args.seed, calls=mix, drain_s=args.drain_s, streams=1)  # fmt: skip


def run_softswitch(target: str, pid: int | None, subscribers: tuple[str, ...], args: argparse.Namespace,
                   run_id: str, metrics_url: str | None) -> list[Summary]:  # fmt: skip
    base = softswitch_base(target, subscribers, args)
    phases = [replace(base, rate=rate, tag=f"{run_id}u{i}") for i, rate in enumerate(args.calls_rates)]
    if args.calls_stream_rate > 0:
        phases.append(replace(base, rate=args.calls_stream_rate, transport="stream", streams=args.streams,
                              tag=f"{run_id}s"))  # fmt: skip
    if args.calls_closed > 0:
        phases.append(replace(base, rate=0.0, concurrency=args.calls_closed, tag=f"{run_id}c"))
    return [run_measured(pid, f"softswitch {i + 1}/{len(phases)}", w, args.wait_quiet, metrics_url)
            for i, w in enumerate(phases)]  # fmt: skip


def run_knee(target: str, pid: int | None, subscribers: tuple[str, ...], args: argparse.Namespace, run_id: str,
             metrics_url: str | None) -> list[Summary]:  # fmt: skip
    """The softswitch over ``Stream`` at each of ``--knee-rates`` calls/s (the knee is found in ``report``)."""
    base = replace(softswitch_base(target, subscribers, args), transport="stream", streams=args.streams)
    rates = sorted(args.knee_rates)
    return [run_measured(pid, f"knee {i + 1}/{len(rates)}", replace(base, rate=rate, tag=f"{run_id}k{i}"),
                         args.wait_quiet, metrics_url) for i, rate in enumerate(rates)]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id = f"{int(time.time()) % 1_000_000:06d}"
    info = machine_info()
    progress(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, grpcio {info['grpcio']}")
    info["busy_before_start"] = busy = machine_busy()
    if busy > QUIET_BUSY_SHARE:
        progress(f"warning: the machine is {busy:.0%} busy before the benchmark starts: figures will be low")
    ceiling_specs = ceiling_accounts(args.accounts)
    switch_specs = softswitch_accounts(args.accounts, args.poor_share, run_id)
    base = Workload(target="", mode="unary", processes=args.loadgen_procs, seconds=args.seconds,
                    max_requests=args.max_requests, concurrency=1, channels=args.channels,
                    subscribers=tuple(spec.id for spec in ceiling_specs), called=CALLED,
                    warmup_s=min(1.0, args.seconds / 4), seed=args.seed)  # fmt: skip
    results: Summary = {"machine": info, "run_id": run_id, "parameters": {k: str(v) for k, v in vars(args).items()},
                        "phases": {}, "softswitch": [], "ceilings": {}, "notes": []}  # fmt: skip
    phases: dict[str, dict[str, Summary]] = results["phases"]

    if "redis" in args.phases:
        progress("Redis alone: redis-benchmark calling session.lua (1 and 16 starts per call) …")
        results["ceilings"]["redis"] = redis = redis_ceiling.measure(requests=args.redis_requests, clients=16,
                                                                     batches=(1, 16))  # fmt: skip
        for run in redis.get("runs", []):
            progress(f"  {run['batch']} per call: {run['starts_per_s']:,} starts/s")
        if redis["status"] != "measured":
            progress(f"  {redis['reason']}")

    with tempfile.TemporaryDirectory(prefix="occ_bench_") as temp:
        temp_dir = Path(temp)
        if "echo" in args.phases:
            with echo_server(temp_dir, args.workers) as (echo, target):
                phases["echo"] = run_ceiling_phases(echo.pid, "echo", replace(base, target=target, tag="e"), args)
                results["ceilings"]["h2load_echo"] = run_peak(target, echo.pid, ceiling_specs[0].id, args)
        if {"occ", "softswitch", "knee", "diameter", "correctness"} & set(args.phases):
            run_occ(args, results, temp_dir, base, run_id, ceiling_specs, switch_specs)
        if "scaling" in args.phases and not args.target:
            results["scaling"] = run_scaling(args, temp_dir, base, run_id, ceiling_specs)

    results["knee"] = report.knee(results.get("stream_knee", []))
    results["targets"] = report.targets(phases, results["softswitch"], results.get("correctness", {}).get("violations"),
                                        knee=results["knee"], pauses=report.pauses_by_phase(results))  # fmt: skip
    return finish(args, results)


@contextmanager
def echo_server(temp_dir: Path, workers: int) -> Iterator[tuple[Server, str]]:
    """The echo server with ``workers`` processes, serving; yields it and its target."""
    port = free_port()
    command = [sys.executable, str(ECHO_SERVER), "--port", str(port), "--workers", str(workers)]
    progress(f"starting the echo server on 127.0.0.1:{port} ({workers} worker(s)) …")
    with running(Server("echo server", command, temp_dir / f"echo-{workers}.log")) as echo:
        echo.wait_for_log("READY", SERVER_START_TIMEOUT_S)
        yield echo, f"127.0.0.1:{port}"


@contextmanager
def occ_server(args: argparse.Namespace, temp_dir: Path, workers: int
               ) -> Iterator[tuple[Server, str, AdminTarget, dict[str, str], str]]:  # fmt: skip
    """``occ serve`` with ``workers`` processes, its embedded Redis (or the harness's replicated one) and the example
    tariff in a data dir of its own, serving; yields it, its target, its Admin, its environment and its /metrics."""
    own_redis = replicas.start(temp_dir / f"redis-{workers}", replicas=args.replicas,
                               appendfsync=args.redis_appendfsync) if args.replicas else []  # fmt: skip
    if own_redis:
        progress(f"OCC's Redis: a primary on port {own_redis[0].port} with {args.replicas} replica(s), "
                 f"appendfsync {args.redis_appendfsync}, min_replicas_acked {args.min_replicas_acked}")  # fmt: skip
    try:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            ports = {"port": free_port(), "admin": free_port(), "metrics": free_port()}
            data_dir = temp_dir / f"occ-data-{workers}-{attempt}"
            # occ settle and occ reconcile find the embedded Redis and the SQLite store under the server's data dir.
            env = {key: value for key, value in os.environ.items() if not key.startswith("OCC_")}
            env["OCC_DATA_DIR"] = str(data_dir)
            env["OCC_REDIS_APPENDFSYNC"] = args.redis_appendfsync
            if own_redis:
                env["OCC_REDIS_URL"] = own_redis[0].url
                env["OCC_MIN_REPLICAS_ACKED"] = str(args.min_replicas_acked)
            command = [str(OCC), "serve", "--port", str(ports["port"]), "--metrics-port", str(ports["metrics"]),
                       "--data-dir", str(data_dir), "--tariff", str(TARIFF), "--workers", str(workers),
                       "--admin-listen", f"127.0.0.1:{ports['admin']}", "--no-console"]  # fmt: skip
            if args.no_settle_worker:
                command.append("--no-settle")
            if "diameter" in args.phases:
                args.diameter_port = free_port()
                command += diameter_phase.serve_options(args.diameter_port)
            progress(f"starting OCC on 127.0.0.1:{ports['port']} ({workers} worker(s)): {' '.join(command)}")
            server = Server("occ serve", command, temp_dir / f"occ-{workers}-{attempt}.log", env=env)
            target = f"127.0.0.1:{ports['port']}"
            try:
                wait_until_serving(target, SERVER_START_TIMEOUT_S, server)
            except RuntimeError as error:
                server.stop()
                # Another program on this machine took a port between free_port() and occ serve's bind: new ports.
                if "already in use" not in str(error) or attempt == PORT_ATTEMPTS:
                    raise
                progress("  a port was taken meanwhile by another program: trying new ports")
                continue
            with running(server):
                # the Admin listener's token for the local operator, which occ serve wrote before it started serving
                admin = AdminTarget(f"127.0.0.1:{ports['admin']}", (data_dir / "admin-token").read_text().strip())
                yield server, target, admin, env, f"http://127.0.0.1:{ports['metrics']}/metrics"
            return
    finally:
        replicas.stop(own_redis)


def run_occ(args: argparse.Namespace, results: Summary, temp_dir: Path, base: Workload, run_id: str,
            ceiling_specs: list, switch_specs: list) -> None:  # fmt: skip
    """Start OCC (or use ``--target``), create the accounts, run its phases and the correctness checks."""
    if args.target:
        server: Server | External = External("occ", args.server_pid)
        admin = AdminTarget(args.admin_target, args.admin_token or os.environ.get("OCC_TOKEN", ""))
        wait_until_serving(args.target, SERVER_START_TIMEOUT_S, server)
        run_occ_phases(args, results, (server, args.target, admin, None, None), base, run_id, ceiling_specs,
                       switch_specs)  # fmt: skip
        return
    if "serve" not in occ_commands():
        results["notes"].append("occ serve not available: OCC phases skipped")
        progress(results["notes"][-1])
        return
    with occ_server(args, temp_dir, args.workers) as served:
        run_occ_phases(args, results, served, base, run_id, ceiling_specs, switch_specs)
        results["occ_log_tail"] = served[0].log_tail(20).splitlines()


def run_occ_phases(args: argparse.Namespace, results: Summary, served: tuple, base: Workload, run_id: str,
                   ceiling_specs: list, switch_specs: list) -> None:  # fmt: skip
    server, target, admin, env, metrics_url = served
    specs = (ceiling_specs if "occ" in args.phases else []) + (
        switch_specs if {"softswitch", "knee"} & set(args.phases) else [])  # fmt: skip
    diameter_specs = diameter_phase.accounts(args.accounts, run_id) if "diameter" in args.phases else []
    specs += diameter_specs
    progress(f"creating and topping up {len(specs):,} accounts through the Admin API on {admin.address} …")
    results["accounts"] = asyncio.run(create_accounts(admin, specs))
    subscribers = tuple(spec.id for spec in switch_specs)
    if "occ" in args.phases:
        workload = replace(base, target=target, tag=f"o{run_id}")
        results["phases"]["occ"] = run_ceiling_phases(server.pid, "occ", workload, args, metrics_url)
        results["ceilings"]["h2load_occ"] = run_peak(target, server.pid, ceiling_specs[0].id, args)
    if "softswitch" in args.phases:
        results["softswitch"] = run_softswitch(target, server.pid, subscribers, args, run_id, metrics_url)
    if "knee" in args.phases:
        results["stream_knee"] = run_knee(target, server.pid, subscribers, args, run_id, metrics_url)
    if "diameter" in args.phases:
        load = diameter_phase.CallLoad(args.seconds, args.diameter_concurrency, [s.id for s in diameter_specs],
                                       diameter_phase.CALLED, args.max_requests, run_id)  # fmt: skip
        results["diameter"] = diameter_phase.run(target, args.diameter_port, server.pid, load)
    if "correctness" in args.phases:
        progress("correctness: accounts, sessions, settlement …")
        switched = [*results["softswitch"], *results.get("stream_knee", [])]
        unended = [tuple(item) for phase in switched for item in phase["unended_sessions"]]
        unended += [tuple(item) for side in ("diameter", "grpc") for item in
                    results.get("diameter", {}).get(side, {}).get("unended", [])]  # fmt: skip
        switch_ids = [s.id for s in switch_specs] if {"softswitch", "knee"} & set(args.phases) else []
        accounts = correctness.check_accounts(
            admin,
            softswitch_ids=switch_ids + [s.id for s in diameter_specs],
            ceiling_ids=[s.id for s in ceiling_specs] if "occ" in args.phases else [],
            unended=unended,
        )
        settlement = correctness.settle_and_reconcile(OCC, occ_commands(), env)
        violations = accounts["violations"] + (settlement["status"] == "failed")
        violations += results.get("diameter", {}).get("money", {}).get("violations", 0)
        results["correctness"] = {"accounts": accounts, "settlement": settlement, "violations": violations}
        progress(f"  {accounts['accounts_checked']:,} accounts: {violations} violation(s); {accounts['examples']}; "
                 f"settlement {settlement['status']}")  # fmt: skip


def run_scaling(args: argparse.Namespace, temp_dir: Path, base: Workload, run_id: str,
                ceiling_specs: list) -> list[Summary]:  # fmt: skip
    """Closed-loop unary StartSession against the echo server and OCC at each of ``--scaling-workers``."""
    rows = []
    for workers in args.scaling_workers:
        unary = replace(base, mode="unary", concurrency=max(1, args.concurrency // args.loadgen_procs),
                        channels=2 * workers)  # fmt: skip
        row: Summary = {"workers": workers}
        with echo_server(temp_dir, workers) as (echo, target):
            row["echo"] = run_measured(echo.pid, f"scaling echo ×{workers}",
                                       replace(unary, target=target, tag=f"se{workers}"), args.wait_quiet)  # fmt: skip
        with occ_server(args, temp_dir, workers) as (server, target, admin, _, metrics_url):
            asyncio.run(create_accounts(admin, ceiling_specs))
            row["occ"] = run_measured(server.pid, f"scaling occ ×{workers}",
                                      replace(unary, target=target, tag=f"so{run_id}{workers}"), args.wait_quiet,
                                      metrics_url)  # fmt: skip
        rows.append(row)
    return rows


def finish(args: argparse.Namespace, results: Summary) -> int:
    """Write the JSON, the Markdown summary and the plots; print the summary; the exit status."""
    directory: Path = args.results_dir
    directory.mkdir(parents=True, exist_ok=True)
    lines = report.markdown(results)
    if "diameter" in results:
        lines += diameter_phase.markdown(results["diameter"])
    results["plots"] = report.plots(results, directory)
    (directory / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "online.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print("\n".join(lines))
    for note in results["notes"]:
        print(f"\nNote: {note}")
    progress(f"results in {directory}: online.json, summary.md, {', '.join(results['plots'])}")
    all_phases: list[Any] = [s for by_mode in results["phases"].values() for s in by_mode.values()]
    failed = [s["description"] for s in [*all_phases, *results["softswitch"]]
              if s["requests"] == 0 or sum(s["errors"].values()) + s.get("skipped", 0) > s["requests"]]  # fmt: skip
    if failed:
        print(f"Errors dominate: {', '.join(failed)}", file=sys.stderr)
    violations = results.get("correctness", {}).get("violations", 0)
    return 1 if failed or violations else 0


if __name__ == "__main__":
    sys.exit(main())

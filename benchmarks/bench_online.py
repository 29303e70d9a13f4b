"""Benchmark of the online path: OCC's StartSession against the gRPC framework's ceiling, unary and over Stream.

Run with ``.venv/bin/python benchmarks/bench_online.py`` (``--help`` for the options). In one run it

1. starts the echo server (``benchmarks/online/echo_server.py``: grpc.aio on uvloop, the same ``occ.v1.Charging``
   contract and server options, canned answers, no Redis) and measures it with the load generator
   (``benchmarks/online/loadgen.py``) in three phases: closed-loop unary ``StartSession``, closed-loop ``Stream``
   and open-loop Poisson arrivals at ``--rate`` requests/s; then stops it;
2. starts OCC (``occ serve --port P --metrics-port 0 --data-dir <tmp> --tariff examples/tariff --workers W``, with
   its embedded Redis), creates ``--accounts`` prepaid accounts through the Admin API (plan ``retail``, EUR, a
   large top-up) and runs the same three phases, every request a real reservation (CCR-INITIAL for 60 s of voice
   to a called party of the example tariff) on an account drawn at random; then stops it;
3. prints a Markdown table per phase (requests/s, latency percentiles, server CPU per request, result codes), the
   ratios OCC ÷ echo with the targets, and writes everything to ``benchmarks/results/online.json``.

Targets (informational: a missed target does not fail the run): unary OCC ≥ 85 % of the unary echo ceiling,
Stream OCC ≥ 75 % of the stream echo ceiling, p99 ≤ 5 ms at 1,000 requests/s offered open-loop. The exit status is
non-zero only when errors dominate a phase (more failed than answered requests, or nothing answered).

Fairness on a small machine. The load generator runs in its own process(es), never in the server's, and both
share the machine's cores (nothing is pinned). For every phase the run reports the server's CPU time (the server
process and all its descendants, embedded Redis included, from ``/proc/<pid>/stat``: utime + stime of the live
processes plus cutime + cstime of reaped ones), the load generator's own CPU time, the busiest single thread of the
server, the machine's busy share and any other process that was busy meanwhile (``--wait-quiet`` waits for such
work to stop before each phase).

On a 2-core machine the default arrangement is 1 server worker + 1 load process with 2 connections, 64 unary calls
in flight, or 4 streams × 16 messages in flight. Measured on the 2-core AMD EPYC this was written on, it keeps the
machine ~95 % busy while no thread of either process goes above ~0.7 of a core: the limit is the two cores, not
the server's event loop or the load generator's. More load does not raise the echo figure: 2 load processes give
~10 % fewer req/s and a p99 several times higher, 128 in flight instead of 64 gives no more req/s and twice the
latency, and a second server worker costs more CPU per request than it gains. The load generator's own CPU (about
75–90 µs per unary call, 60–70 µs per Stream message) is thus part of every closed-loop figure on such a machine,
for the echo server and OCC alike, and it dilutes the req/s ratio: a server twice as costly per request loses
less than half its throughput. So the run prints, next to each req/s ratio, the ratio of server CPU per request
(echo ÷ OCC), which does not depend on the load generator; both servers always run with the same workers, load
processes, connections, concurrency and window, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

# The working tree's packages (occ.v1 generated code) ahead of whatever the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
from online.loadgen import PhaseResult, Workload, run_phase
from online.procstat import CpuSample, all_processes, busiest_outside, process_tree, tree_cpu

from occ.v1 import admin_pb2, admin_pb2_grpc

Summary = dict[str, Any]  # one phase's figures, as written to the JSON
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "online.json"
ECHO_SERVER = Path(__file__).resolve().parent / "online" / "echo_server.py"
OCC = Path(sys.executable).parent / "occ"
TARIFF = ROOT / "examples" / "tariff"
TARGET_UNARY_RATIO = 0.85
TARGET_STREAM_RATIO = 0.75
TARGET_P99_MS = 5.0
TARGET_RATE = 1000.0
TOP_UP_MICROS = 1_000_000 * 1_000_000  # 1,000,000 EUR per account: reservations never run short
TOP_UP_LEDGER_CODE = 400000009
# Called parties the example tariff prices on the retail plan: UK fixed, UK mobile, EU and world destinations.
CALLED = (
    "+442079460000",
    "+442079460123",
    "+441614960000",
    "+447700900123",
    "+447911123456",
    "+33142685300",
    "+34912345678",
    "+4930123456",
    "+12125550100",
    "+61298765432",
)
QUIET_BUSY_SHARE = 0.15  # more than this with nothing of ours running: someone else is using the machine
SERVER_START_TIMEOUT_S = 90.0
SERVER_STOP_TIMEOUT_S = 20.0

_T0 = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {message}", flush=True)


def machine_info() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "platform": platform.platform(),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def machine_jiffies() -> list[int]:
    """Clock ticks of all cores since boot: user nice system idle iowait irq softirq steal (/proc/stat, line 1)."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_shares(before: list[int], after: list[int]) -> dict[str, float]:
    """How the machine's time went between two samples, as shares of all cores (guest time is inside user)."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = max(sum(delta), 1)
    user, nice, system, idle, iowait, irq, softirq, steal = delta
    return {
        "busy": round((total - idle - iowait) / total, 3),
        "user": round((user + nice) / total, 3),
        "system": round(system / total, 3),
        "irq_softirq": round((irq + softirq) / total, 3),  # loopback TCP is mostly here: no process is charged
        "iowait": round(iowait / total, 3),
        "steal": round(steal / total, 3),
    }


# --------------------------------------------------------------------------------------------------------------------
# Servers under test


class Server:
    """A server under test started as its own process group; stopped with SIGTERM, then SIGKILL if it lingers."""

    def __init__(self, name: str, command: list[str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.pid = self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_for_log(self, marker: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if marker in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:g} s:\n{self.log_tail()}")

    def cpu(self) -> CpuSample:
        return tree_cpu(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                progress(f"{self.name} did not stop within {SERVER_STOP_TIMEOUT_S:g} s: killing its process group")
        # Anything left in the group we created (a worker, an embedded redis-server) goes too.
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pid, signum)
            except ProcessLookupError:
                break
            time.sleep(1.0)
        if self.process.poll() is None:
            self.process.wait(5)
        self._log.close()


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()
        progress(f"{server.name} stopped")


def occ_serve_help() -> str | None:
    """The help text of ``occ serve``, or None when this checkout has no such command yet."""
    if not OCC.exists():
        return None
    done = subprocess.run([str(OCC), "serve", "--help"], capture_output=True, text=True, timeout=60, check=False)
    return done.stdout if done.returncode == 0 else None


def wait_until_serving(target: str, timeout_s: float, server: Server) -> None:
    """Wait until the server answers gRPC (the health service if it has one, else any answer from Admin)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        with grpc.insecure_channel(target) as channel:
            try:
                status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if status.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = f"health {health_pb2.HealthCheckResponse.ServingStatus.Name(status.status)}"
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    try:
                        admin_pb2_grpc.AdminStub(channel).GetAccount(admin_pb2.GetAccountRequest(id="-"), timeout=2)
                        return
                    except grpc.RpcError as admin_error:
                        if admin_error.code() != grpc.StatusCode.UNAVAILABLE:
                            return
                last = error.code().name
        time.sleep(0.25)
    raise RuntimeError(f"{server.name} not serving after {timeout_s:g} s ({last}):\n{server.log_tail()}")


async def create_accounts(target: str, account_ids: list[str], in_flight: int = 32) -> dict[str, int]:
    """Create prepaid accounts (retail, EUR) and top each up; returns counts of what happened."""
    outcome = {"created": 0, "existed": 0, "topped_up": 0}
    async with grpc.aio.insecure_channel(target) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        todo = iter(account_ids)

        async def worker() -> None:
            for account_id in todo:
                try:
                    await admin.CreateAccount(
                        admin_pb2.Account(id=account_id, currency="EUR", tariff_plan="retail", status=admin_pb2.ACTIVE),
                        timeout=30,
                    )
                    outcome["created"] += 1
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                        raise
                    outcome["existed"] += 1
                await admin.Transact(
                    admin_pb2.TransactionRequest(
                        account_id=account_id,
                        type=admin_pb2.TOP_UP,
                        amount_micros=TOP_UP_MICROS,
                        idempotency_key=f"bench-top-up-{account_id}",
                        ledger_code=TOP_UP_LEDGER_CODE,
                        description="bench_online top-up",
                    ),
                    timeout=30,
                )
                outcome["topped_up"] += 1

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return outcome


# --------------------------------------------------------------------------------------------------------------------
# Phases


def machine_busy(seconds: float = 1.0) -> float:
    """The machine's busy share over the next ``seconds``."""
    before = machine_jiffies()
    time.sleep(seconds)
    return machine_shares(before, machine_jiffies())["busy"]


def wait_until_quiet(max_wait_s: float) -> None:
    """Wait (at most ``max_wait_s``) until the machine (an idle server under test included) is nearly idle."""
    deadline = time.monotonic() + max_wait_s
    while (busy := machine_busy()) > QUIET_BUSY_SHARE and time.monotonic() < deadline:
        progress(f"  machine {busy:.0%} busy with other work: waiting for it to quieten …")
        time.sleep(4.0)
    if busy > QUIET_BUSY_SHARE:
        progress(f"  machine still {busy:.0%} busy: measuring anyway")


def run_measured(server: Server, name: str, workload: Workload, quiet_wait_s: float) -> Summary:
    """One phase against a running server: load, server CPU and machine busy share over the same span."""
    samples: dict[str, Any] = {}
    if quiet_wait_s > 0:
        wait_until_quiet(quiet_wait_s)

    def sample(when: str) -> None:
        samples[f"jiffies{when}"] = machine_jiffies()
        samples[f"processes{when}"] = processes = all_processes()
        samples[f"cpu{when}"] = tree_cpu(server.pid, processes)

    def on_release() -> None:
        sample("0")

    def on_finish() -> None:
        sample("1")

    what = {
        "unary": f"closed-loop unary, {workload.concurrency * workload.processes} in flight",
        "stream": (
            f"closed-loop Stream, {workload.streams * workload.processes} streams × {workload.concurrency} in flight"
        ),
        "open": f"open-loop Poisson unary at {workload.rate:,.0f} req/s",
    }[workload.mode]
    progress(f"{name}: {what}, {workload.processes} load process(es), {workload.seconds:g} s …")
    result: PhaseResult = run_phase(workload, on_release=on_release, on_finish=on_finish)
    cpu: CpuSample = samples["cpu1"].minus(samples["cpu0"])
    machine = machine_shares(samples["jiffies0"], samples["jiffies1"])
    # Everything of this run: the server's tree and ours (this process and the load processes).
    ours = {
        stat.pid
        for when in ("0", "1")
        for root in (server.pid, os.getpid())
        for stat in process_tree(root, samples[f"processes{when}"])
    }
    outside = busiest_outside(samples["processes0"], samples["processes1"], ours)
    cores = os.cpu_count() or 1
    summary = result.summary()
    answered = max(result.requests, 1)
    elapsed = max(result.elapsed_s, 1e-9)
    summary.update(
        {
            "mode": workload.mode,
            "description": what,
            "load_processes": workload.processes,
            "server_cpu_s": round(cpu.total_s, 3),
            "server_cpu_by_command_s": cpu.by_command,
            "server_processes": cpu.processes,
            "server_cpu_us_per_request": round(cpu.total_s * 1e6 / answered, 1),
            "server_requests_per_cpu_s": round(answered / max(cpu.total_s, 1e-9)),  # capacity per core
            "server_cpu_cores": round(cpu.total_s / elapsed, 3),
            "server_busiest_thread_cores": round(cpu.busiest_thread_s / elapsed, 3),
            "machine_share": machine,
            # Busy time charged to neither side: kernel networking (softirq), fsync, anything else running.
            "other_cpu_cores": round(machine["busy"] * cores - (cpu.total_s + result.loadgen_cpu_s) / elapsed, 3),
            "busiest_other_processes_cpu_s": dict(outside),
        }
    )
    latency = summary["latency_ms"]
    lag = (
        f" (from the actual send: p99 {summary['service_time_ms']['p99']:.2f} ms; send lag p99 "
        f"{summary['send_lag_ms']['p99']:.2f} ms)"
        if "send_lag_ms" in summary
        else ""
    )
    progress(
        f"  {result.throughput:,.0f} req/s; p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms, "
        f"p99.9 {latency['p99.9']:.2f} ms{lag}"
    )
    progress(
        f"  server {summary['server_cpu_us_per_request']:.0f} µs CPU/req, {summary['server_cpu_cores']:.2f} cores "
        f"(busiest thread {summary['server_busiest_thread_cores']:.2f}; {cpu.by_command}); "
        f"load generator {summary['loadgen_cpu_cores']:.2f} cores; other {summary['other_cpu_cores']:.2f} cores; "
        f"machine {machine['busy']:.0%} busy ({machine['irq_softirq']:.0%} softirq, {machine['steal']:.0%} steal)"
    )
    busy_outside = [f"{name} {seconds / elapsed:.2f} cores" for name, seconds in outside if seconds / elapsed >= 0.05]
    if busy_outside:
        progress(f"  warning: other processes were busy during the phase ({', '.join(busy_outside)}): less reliable")
    progress(
        f"  result codes {dict(result.codes)}"
        + (f"; errors {dict(result.errors)}" if result.errors else "")
        + (f"; skipped {result.skipped}" if result.skipped else "")
    )
    return summary


def run_phases(server: Server, label: str, base: Workload, args: argparse.Namespace) -> dict[str, Summary]:
    """The three phases against one server, each ``--repeat`` times: the closed loops keep their best run (highest
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
            tagged = replace(workload, tag=f"{label[0]}{mode[0]}{run}")
            runs.append(run_measured(server, name, tagged, args.wait_quiet))
        if mode == "open":
            chosen = sorted(runs, key=lambda summary: summary["latency_ms"]["p99"])[(len(runs) - 1) // 2]
        else:
            chosen = max(runs, key=lambda summary: summary["throughput_per_s"])
        if len(runs) > 1:
            chosen["runs"] = [
                {
                    "throughput_per_s": summary["throughput_per_s"],
                    "p99_ms": summary["latency_ms"]["p99"],
                    "server_cpu_us_per_request": summary["server_cpu_us_per_request"],
                    "other_cpu_cores": summary["other_cpu_cores"],
                }
                for summary in runs
            ]
        phases[mode] = chosen
    return phases


# --------------------------------------------------------------------------------------------------------------------
# Report


def markdown_table(phases: dict[str, dict[str, Summary]]) -> list[str]:
    header = (
        "| server | phase | req/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/req | server cores "
        "| load-gen cores | result codes | errors |"
    )
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    for server, by_mode in phases.items():
        for summary in by_mode.values():
            latency = summary["latency_ms"]
            codes = ", ".join(f"{code} {count:,}" for code, count in summary["result_codes"].items()) or "—"
            errors = dict(summary["errors"]) | ({"skipped": summary["skipped"]} if summary["skipped"] else {})
            lines.append(
                f"| {server} | {summary['description']} | {summary['throughput_per_s']:,.0f} "
                f"| {latency['p50']:.2f} | {latency['p99']:.2f} | {latency['p99.9']:.2f} | {latency['max']:.2f} "
                f"| {summary['server_cpu_us_per_request']:,.0f} | {summary['server_cpu_cores']:.2f} "
                f"| {summary['loadgen_cpu_cores']:.2f} | {codes} "
                f"| {', '.join(f'{name} {count:,}' for name, count in errors.items()) or '0'} |"
            )
    return lines


def targets(phases: dict[str, dict[str, Summary]], rate: float) -> list[Summary]:
    """The issue's three targets (OCC against the echo ceiling of the same run), plus the server-CPU view of each
    ratio: echo µs/request ÷ OCC µs/request, what the throughput ratio would be if the server had the cores alone."""
    if "occ" not in phases:
        return []
    echo, occ = phases["echo"], phases["occ"]
    checks = []
    for mode, target, label in (
        ("unary", TARGET_UNARY_RATIO, "unary OCC ÷ unary echo"),
        ("stream", TARGET_STREAM_RATIO, "Stream OCC ÷ Stream echo"),
    ):
        value = occ[mode]["throughput_per_s"] / max(echo[mode]["throughput_per_s"], 1e-9)
        cpu_ratio = echo[mode]["server_cpu_us_per_request"] / max(occ[mode]["server_cpu_us_per_request"], 1e-9)
        checks.append(
            {
                "name": f"{mode}_ratio",
                "label": f"{label} (req/s) ≥ {target:.0%}",
                "value": round(value, 3),
                "shown": f"{value:.1%} (server CPU per request: {cpu_ratio:.1%})",
                "server_cpu_ratio": round(cpu_ratio, 3),
                "target": target,
                "pass": value >= target,
            }
        )
    p99 = occ["open"]["latency_ms"]["p99"]
    checks.append(
        {
            "name": "open_loop_p99_ms",
            "label": f"OCC p99 at {rate:,.0f} req/s open-loop ≤ {TARGET_P99_MS:g} ms",
            "value": p99,
            "shown": f"{p99:.2f} ms (echo {echo['open']['latency_ms']['p99']:.2f} ms)",
            "target": TARGET_P99_MS,
            "pass": p99 <= TARGET_P99_MS,
        }
    )
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase (default 10)")
    parser.add_argument("--quick", action="store_true", help="2-second phases")
    parser.add_argument("--workers", type=int, default=1, help="server processes, echo and OCC alike (default 1)")
    parser.add_argument("--loadgen-procs", type=int, default=1, help="load generator processes (default 1)")
    parser.add_argument(
        "--channels",
        type=int,
        help="channels (TCP connections) per load process (default 2 per server worker: SO_REUSEPORT spreads "
        "connections, not requests, over the workers)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="unary calls in flight, all processes (64)")
    parser.add_argument("--streams", type=int, default=4, help="streams per load process (default 4)")
    parser.add_argument("--window", type=int, default=16, help="messages in flight per stream (default 16)")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="open-loop requests/s (default 1,000)")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="cap per phase (default 2,000,000)")
    parser.add_argument("--accounts", type=int, default=1000, help="bench accounts on OCC (default 1,000)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per phase: best req/s of the closed loops, median p99 of the open"
    )
    parser.add_argument("--echo-only", action="store_true", help="measure the echo ceiling only")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each phase, wait up to this long for other work on the machine to stop (default 0: no wait)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 2.0
    if args.channels is None:
        args.channels = 2 * args.workers
    counts = (
        "workers", "loadgen_procs", "channels", "concurrency", "streams", "window", "max_requests", "accounts", "repeat"
    )  # fmt: skip
    for name in counts:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.seconds <= 600 or not 0 < args.rate <= 100_000 or not 0 <= args.wait_quiet <= 3600:
        parser.error("--seconds must be in (0, 600], --rate in (0, 100,000] and --wait-quiet in [0, 3600]")

    info = machine_info()
    progress(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, grpcio {info['grpcio']}")
    info["busy_before_start"] = busy = machine_busy()
    if busy > QUIET_BUSY_SHARE:
        progress(f"warning: the machine is {busy:.0%} busy before the benchmark starts: figures will be low")
    accounts = [f"bench-{i:05d}" for i in range(args.accounts)]
    base = Workload(
        target="",
        mode="unary",
        processes=args.loadgen_procs,
        seconds=args.seconds,
        max_requests=args.max_requests,
        concurrency=1,
        channels=args.channels,
        subscribers=tuple(accounts),
        called=CALLED,
        warmup_s=min(1.0, args.seconds / 4),
    )
    results: Summary = {"machine": info, "parameters": {k: str(v) for k, v in vars(args).items()}}
    phases: dict[str, dict[str, Summary]] = {}
    notes: list[str] = []

    with tempfile.TemporaryDirectory(prefix="bench_online_") as temp:
        temp_dir = Path(temp)

        # 1. The echo ceiling.
        port = free_port()
        command = [sys.executable, str(ECHO_SERVER), "--port", str(port), "--workers", str(args.workers)]
        progress(f"starting the echo server on 127.0.0.1:{port} ({args.workers} worker(s)) …")
        with running(Server("echo server", command, temp_dir / "echo.log")) as server:
            server.wait_for_log("READY", SERVER_START_TIMEOUT_S)
            phases["echo"] = run_phases(server, "echo", replace(base, target=f"127.0.0.1:{port}"), args)

        # 2. OCC with real reservations.
        if args.echo_only:
            pass
        elif occ_serve_help() is None:
            notes.append("occ serve not available yet: measured the echo ceiling only")
            progress(notes[-1])
        else:
            port = free_port()
            data_dir = temp_dir / "occ-data"
            data_dir.mkdir()
            command = [
                str(OCC), "serve", "--port", str(port), "--metrics-port", "0", "--data-dir", str(data_dir),
                "--tariff", str(TARIFF), "--workers", str(args.workers),
            ]  # fmt: skip
            progress(f"starting OCC on 127.0.0.1:{port} ({args.workers} worker(s)): {' '.join(command)}")
            with running(Server("occ serve", command, temp_dir / "occ.log")) as server:
                target = f"127.0.0.1:{port}"
                wait_until_serving(target, SERVER_START_TIMEOUT_S, server)
                progress(f"creating and topping up {len(accounts):,} accounts through the Admin API …")
                started = time.perf_counter()
                results["accounts"] = asyncio.run(create_accounts(target, accounts))
                progress(f"  {results['accounts']} in {time.perf_counter() - started:.1f} s")
                phases["occ"] = run_phases(server, "occ", replace(base, target=target), args)
                results["occ_log_tail"] = server.log_tail(40).splitlines()

    checks = targets(phases, args.rate)
    results |= {"phases": phases, "targets": checks, "notes": notes}

    print()
    print(
        f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, grpcio {info['grpcio']}; "
        f"{args.workers} server worker(s), {args.loadgen_procs} load process(es) × {args.channels} channel(s); "
        f"{args.seconds:g} s per phase"
    )
    print()
    print("\n".join(markdown_table(phases)))
    if checks:
        print()
        print("| target | value | status |\n|---|---|---|")
        for check in checks:
            print(f"| {check['label']} | {check['shown']} | {'PASS' if check['pass'] else 'FAIL'} |")
    for server, by_mode in phases.items():
        for mode, summary in by_mode.items():
            if summary["busiest_other_processes_cpu_s"] and summary["other_cpu_cores"] > 0.2:
                others = summary["busiest_other_processes_cpu_s"].items()
                busiest = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in others)
                notes.append(
                    f"{server} {mode}: {summary['other_cpu_cores']:.2f} cores of other work ran meanwhile ({busiest})"
                )
    for note in notes:
        print(f"\nNote: {note}")

    results["total_s"] = round(time.perf_counter() - _T0, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nResults written to {args.output} (run took {results['total_s']:.0f} s)")
    failed = [
        f"{server} {mode}"
        for server, by_mode in phases.items()
        for mode, summary in by_mode.items()
        if summary["requests"] == 0 or sum(summary["errors"].values()) + summary["skipped"] > summary["requests"]
    ]
    if failed:
        print(f"Errors dominate: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

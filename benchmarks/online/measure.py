"""One measured phase: the load, the server's CPU and the machine's busy share over the same span.

For every phase the run reports the server's CPU time (the server process and all its descendants, embedded Redis
included, from ``/proc/<pid>/stat``: utime + stime of the live processes plus cutime + cstime of reaped ones), the
load generator's own CPU time, the busiest single thread of the server, the machine's busy share and any other
process that was busy meanwhile; for OCC also its event loop's pauses and full collections (``pauses.py``).
Against an external server whose pid is unknown the server figures are absent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks.online.loadgen import PhaseResult, Workload, run_phase
from benchmarks.online.machine import (
    Progress,
    machine_jiffies,
    machine_shares,
    progress,
    wait_until_quiet,
)
from benchmarks.online.pauses import pause_window
from benchmarks.online.procstat import CpuSample, all_processes, busiest_outside, process_tree, tree_cpu

Summary = dict[str, Any]  # one phase's figures, as written to the JSON


def describe(workload: Workload) -> str:
    if workload.mode == "calls":
        transport = "unary" if workload.transport == "unary" else f"Stream ×{workload.streams * workload.channels}"
        if workload.rate > 0:
            return f"softswitch {transport}, Poisson {workload.rate:,.0f} calls/s"
        return f"softswitch {transport}, {workload.concurrency * workload.processes} calls at a time"
    return {
        "unary": f"closed-loop unary, {workload.concurrency * workload.processes} in flight",
        "stream": f"closed-loop Stream, {workload.streams * workload.processes} streams × {workload.concurrency}",
        "open": f"open-loop Poisson unary at {workload.rate:,.0f} req/s",
    }[workload.mode]


def cpu_window(pid: int | None) -> tuple[Callable[[], None], Callable[[], Summary]]:
    """A (start, stop) pair: stop returns the server's and the machine's figures since start."""
    samples: dict[str, Any] = {}

    def sample(when: str) -> None:
        samples[f"t{when}"] = time.perf_counter()
        samples[f"jiffies{when}"] = machine_jiffies()
        samples[f"processes{when}"] = processes = all_processes()
        samples[f"cpu{when}"] = tree_cpu(pid, processes) if pid is not None else None

    def stop() -> Summary:
        sample("1")
        elapsed_s = max(samples["t1"] - samples["t0"], 1e-9)
        roots = [os.getpid()] + ([pid] if pid is not None else [])
        ours = {s.pid for w in ("0", "1") for root in roots for s in process_tree(root, samples[f"processes{w}"])}
        figures: Summary = {
            "machine_share": machine_shares(samples["jiffies0"], samples["jiffies1"]),
            "busiest_other_processes_cpu_s": dict(busiest_outside(samples["processes0"], samples["processes1"], ours)),
            "window_s": elapsed_s,
        }
        if pid is not None:
            cpu: CpuSample = samples["cpu1"].minus(samples["cpu0"])
            figures |= {
                "server_cpu_s": round(cpu.total_s, 3),
                "server_cpu_by_command_s": cpu.by_command,
                "server_processes": cpu.processes,
                "server_cpu_cores": round(cpu.total_s / elapsed_s, 3),
                "server_busiest_thread_cores": round(cpu.busiest_thread_s / elapsed_s, 3),
            }
        return figures

    return (lambda: sample("0")), stop


def run_measured(pid: int | None, name: str, workload: Workload, quiet_wait_s: float,
                 metrics_url: str | None = None) -> Summary:  # fmt: skip
    """One phase against a running server (``pid`` for its CPU, None if unknown; ``metrics_url``, OCC's ``/metrics``,
    for its pauses); prints progress, returns figures."""
    if quiet_wait_s > 0:
        wait_until_quiet(quiet_wait_s)
    what = describe(workload)
    progress(f"{name}: {what}, {workload.processes} load process(es), {workload.seconds:g} s …")
    start, stop = cpu_window(pid)
    pauses_start, pauses_stop = pause_window(metrics_url)
    stopped: Summary = {}
    line = Progress(name, workload.seconds)

    def on_release() -> None:
        pauses_start()
        start()

    def on_finish() -> None:
        stopped.update(stop())
        stopped["pauses"] = pauses_stop()

    result: PhaseResult = run_phase(workload, on_release=on_release, on_finish=on_finish, on_progress=line.update)
    Progress.clear()
    summary = result.summary()
    summary.update({"mode": workload.mode, "description": what, "load_processes": workload.processes})
    summary.update({k: v for k, v in stopped.items() if k != "window_s"})
    cores = os.cpu_count() or 1
    elapsed_s = max(result.elapsed_s, 1e-9)
    machine = stopped["machine_share"]
    answered = max(result.requests, 1)
    if "server_cpu_s" in stopped:
        summary["server_cpu_us_per_request"] = round(stopped["server_cpu_s"] * 1e6 / answered, 1)
        summary["server_requests_per_cpu_s"] = round(answered / max(stopped["server_cpu_s"], 1e-9))
        # Busy time charged to neither side: kernel networking (softirq), fsync, anything else running.
        ours_s = stopped["server_cpu_s"] + result.loadgen_cpu_s
        summary["other_cpu_cores"] = round(machine["busy"] * cores - ours_s / stopped["window_s"], 3)
    if workload.mode == "calls":
        summary["offered_calls_per_s"] = workload.rate
        summary["transport"] = workload.transport
        summary["arrival_window_s"] = workload.seconds
    latency = summary["latency_ms"]
    progress(
        f"  {result.throughput:,.0f} req/s; p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms, "
        f"p99.9 {latency['p99.9']:.2f} ms over {elapsed_s:.1f} s"
    )
    if "server_cpu_us_per_request" in summary:
        progress(
            f"  server {summary['server_cpu_us_per_request']:.0f} µs CPU/req, {summary['server_cpu_cores']:.2f} "
            f"cores (busiest thread {summary['server_busiest_thread_cores']:.2f}); load generator "
            f"{summary['loadgen_cpu_cores']:.2f} cores; machine {machine['busy']:.0%} busy"
        )
    busy = [f"{n} {s / elapsed_s:.2f} cores" for n, s in summary["busiest_other_processes_cpu_s"].items()
            if s / elapsed_s >= 0.05]  # fmt: skip
    if busy:
        progress(f"  warning: other processes were busy during the phase ({', '.join(busy)}): less reliable")
    codes = "; ".join(f"{kind} {dict(counts)}" for kind, counts in summary["result_codes"].items())
    progress(f"  result codes: {codes}" + (f"; errors {summary['errors']}" if summary["errors"] else ""))
    if "calls" in summary:
        progress(f"  calls: {summary['calls']}")
    pauses = summary.get("pauses") or {}
    if pauses.get("status") == "measured":
        progress(f"  event loop: {pauses['lag_over_5ms']:,} of {pauses['lag_samples']:,} lag samples over 5 ms, "
                 f"largest {pauses['largest_lag_shown']}; {pauses['full_collections']} full collection(s)")  # fmt: skip
    return summary

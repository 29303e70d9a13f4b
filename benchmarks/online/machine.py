"""The machine under the benchmark: what it is, how busy it is, free loopback ports, and the progress display.

Progress goes to stderr: one line per step (``progress``), and while a phase runs a single line rewritten in place
(``Progress.update``) with the elapsed time, requests answered, the current rate and errors.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from pathlib import Path

import grpc

QUIET_BUSY_SHARE = 0.15  # more than this with nothing of ours running: someone else is using the machine
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "[::1]", "localhost")

_T0 = time.perf_counter()


def progress(message: str) -> None:
    """One line on stderr, stamped with the seconds since the run began."""
    Progress.clear()
    print(f"[{time.perf_counter() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


class Progress:
    """The updating status line of a running phase (only on a terminal; elsewhere one line every ~5 s)."""

    _shown = False

    def __init__(self, label: str, seconds: float) -> None:
        self._label, self._seconds = label, seconds
        self._last = (0.0, 0)
        self._printed_s = 0.0
        self._tty = sys.stderr.isatty()

    def update(self, elapsed_s: float, requests: int, errors: int) -> None:
        """The load processes' figures ``elapsed_s`` after their release: answered and failed requests so far."""
        now_s = time.perf_counter()
        last_s, last_requests = self._last
        rate = (requests - last_requests) / max(elapsed_s - last_s, 1e-9)
        self._last = (elapsed_s, requests)
        line = (
            f"  {self._label}: {elapsed_s:5.1f}/{self._seconds:g} s, {requests:,} answered, "
            f"{rate:,.0f}/s now, {errors:,} errors"
        )
        if self._tty:
            print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)
            Progress._shown = True
        elif now_s - self._printed_s >= 5.0:
            print(line, file=sys.stderr, flush=True)
            self._printed_s = now_s

    @classmethod
    def clear(cls) -> None:
        if cls._shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
            cls._shown = False


def check_loopback(target: str) -> str:
    """``target`` (host:port) if its host is a loopback address; the harness loads nothing else."""
    host = target.rsplit(":", 1)[0]
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"target {target!r} is not a loopback address: the harness only loads 127.0.0.1 or ::1")
    return target


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

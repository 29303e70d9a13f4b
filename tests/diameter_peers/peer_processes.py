"""Processes of peers no one here wrote (Kamailio, SIPp, freeDiameter, dumpcap), each in its own process group with
its output in a file, stopped at teardown; and free loopback UDP ports for SIP, chosen at run time."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def require(*programs: str) -> None:
    """Fail (not skip) when a program of these tests is missing: ``-m diameter_peers`` asks for them."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/setup.sh --with-diameter-peers")


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 at this moment (SIP; for TCP, ``diameter_peer.free_port``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PeerProcess:
    """A program started in its own process group, its stdout and stderr in ``log_path``."""

    def __init__(self, name: str, args: list[str], log_path: Path, *, cwd: Path | None = None) -> None:
        self.name, self.args, self.log_path = name, args, log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}) before {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {what} after {timeout_s:g} s:\n{self.tail()}")
            time.sleep(0.05)

    def wait_for_text(self, marker: str, timeout_s: float = 30.0) -> None:
        self.wait_for(repr(marker), lambda: marker in self.text(), timeout_s)

    def wait(self, timeout_s: float) -> int:
        """The exit status once the program ends by itself (within ``timeout_s``, else it is stopped and fails)."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.name} still running after {timeout_s:g} s:\n{self.tail()}") from None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 10.0) -> None:
        """Signal the whole group (Kamailio forks its workers), then SIGKILL whatever is left after ``timeout_s``."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):  # then SIGKILL below
                self.process.wait(timeout_s)
        with contextlib.suppress(ProcessLookupError):  # the group already ended
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(5)

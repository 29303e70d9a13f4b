"""The servers under test, each started as its own process group: the echo server and ``occ serve``.

Either can also be one that is already running (``--target``): then nothing is started or stopped, and the server's
CPU is read only when its pid is given.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from benchmarks.online.machine import progress
from benchmarks.online.procstat import CpuSample, tree_cpu
from occ.v1 import admin_pb2, admin_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
ECHO_SERVER = ROOT / "benchmarks" / "online" / "echo_server.py"
OCC = Path(sys.executable).parent / "occ"
SERVER_START_TIMEOUT_S = 90.0
SERVER_STOP_TIMEOUT_S = 20.0


class Server:
    """A server under test started as its own process group; stopped with SIGTERM, then SIGKILL if it lingers."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env=env,
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


def occ_commands() -> set[str]:
    """The sub-commands ``occ --help`` lists (empty when there is no ``occ`` next to this Python)."""
    if not OCC.exists():
        return set()
    done = subprocess.run([str(OCC), "--help"], capture_output=True, text=True, timeout=60, check=False)
    commands, listing = set(), False
    for line in done.stdout.splitlines():
        if line and not line.startswith(" "):  # a heading: "Commands:", or a section of occ --help ("Serving:" …)
            listing = line.endswith(":") and line != "Options:"
        elif listing and line.split():
            commands.add(line.split()[0])
    return commands


class External:
    """A server already running at the target (``--target``): never started or stopped here.

    Attributes:
        name: how the report calls it.
        pid: its process id for CPU accounting, or None (no server CPU figures then).
    """

    def __init__(self, name: str, pid: int | None) -> None:
        self.name, self.pid = name, pid

    def log_tail(self, lines: int = 20) -> str:
        return ""


def wait_until_serving(target: str, timeout_s: float, server: Server | External) -> None:
    """Wait until the server answers gRPC (the health service if it has one, else any answer from Admin)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if isinstance(server, Server) and server.process.poll() is not None:
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

"""The processes the fault suite starts and kills: ``occ serve`` (with its embedded Redis and settlement worker) and
one-shot ``occ`` commands. Loopback only; every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from occ.api.client import aio_channel, sync_channel
from occ.api.tokens import LOCAL_TOKEN_FILE
from occ.store.process import free_port

OCC = str(Path(sys.executable).with_name("occ"))
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_TARIFF = str(ROOT / "examples" / "tariff")
SERVING = health_pb2.HealthCheckResponse.SERVING


def environment(**settings: str) -> dict[str, str]:
    """This environment without anyone's ``OCC_*`` settings, plus ``settings`` (``OCC_<NAME>``)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OCC_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({f"OCC_{name.upper()}": value for name, value in settings.items()})
    return env


def occ(*args: str, timeout_s: float = 120.0, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run one ``occ`` command to its end (bounded by ``timeout_s``)."""
    return subprocess.run([OCC, *args], env=environment(**settings), capture_output=True, text=True,
                          timeout=timeout_s)  # fmt: skip


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(what: str, condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        time.sleep(poll_s)


class OccServe:
    """``occ serve --demo`` on a free loopback port with the example tariff, its data under ``data_dir``, its log in
    ``<data_dir>.log`` (JSON lines). ``start()`` waits until it listens."""

    def __init__(self, data_dir: Path, *, port: int = 0, settle: bool = True) -> None:
        self.data_dir, self.port, self.settle = data_dir, port or free_port(), settle
        self.log_path = data_dir.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self, timeout_s: float = 60.0) -> OccServe:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [OCC, "serve", "--port", str(self.port), "--metrics-port", "0", "--data-dir", str(self.data_dir),
                   "--tariff", EXAMPLE_TARIFF, "--demo", "--no-console"]  # fmt: skip
        # Admin on the charging port (authenticated alike), so one address serves both; its token is the local
        # operator's, which occ serve writes into the data dir before it listens.
        env = environment(settle=str(self.settle).lower(), health_interval_s="0.2", admin_listen="",
                          admin_on_charging_port="true")  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_until("occ serve listening", lambda: bool(self.messages("listening")) or self._exited(), timeout_s)
        if self._exited():
            raise RuntimeError(f"occ serve exited with status {self.process.returncode}; see {self.log_path}")
        return self

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def records(self) -> list[dict[str, Any]]:
        """The log lines of the current run, decoded (tracebacks and other text left out)."""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            lines = log.read().decode(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def messages(self, msg: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record.get("msg") == msg]

    @property
    def redis_pid(self) -> int:
        return self.messages("embedded redis-server started")[-1]["pid"]

    @property
    def settle_pid(self) -> int | None:
        started = self.messages("settlement worker started")
        return started[-1]["pid"] if started else None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str:
        """The local operator's Admin token (role admin) that ``occ serve`` wrote into its data dir."""
        return (self.data_dir / LOCAL_TOKEN_FILE).read_text().strip()

    def admin_channel(self) -> grpc.aio.Channel:
        """An asyncio channel to the server that sends the Admin token on every unary call."""
        return aio_channel(self.address, token=self.admin_token)

    def admin_sync_channel(self) -> grpc.Channel:
        """The same as a sync channel (for the fuzzer, whose calls reach Admin as its most powerful caller)."""
        return sync_channel(self.address, token=self.admin_token)

    def healthy(self) -> bool:
        with grpc.insecure_channel(self.address) as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            except grpc.RpcError:
                return False
            return answer.status == SERVING

    def kill(self) -> None:
        """SIGKILL: no goodbye, no clean-up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout_s``); the exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

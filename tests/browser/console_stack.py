"""Everything the console's browser tests drive, as real processes on free loopback ports.

``ConsoleStack.start(directory)`` runs a private redis-server, ``occ erp-sim``, ``occ serve`` (gRPC, the Admin
listener, the settlement worker, and the console beside it) and ``occ export`` against the simulator (its metrics
on the console's dashboard through ``console_metrics``), all on one SQLite store, and makes Admin tokens: ``admin``
(signs in to do everything) and ``viewer``. ``occ(...)`` runs an ``occ`` command against them as an operator's
shell would. ``stop()`` ends every process it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from occ.store.process import RedisProcess, start_redis_server

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_TARIFF = REPO / "examples" / "tariff"
OCC = [sys.executable, "-c", "from occ.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(what: str, ready: Callable[[], bool], timeout_s: float = 60.0, *, log: Path | None = None) -> None:
    """Poll ``ready`` every 50 ms until it is true; fail after ``timeout_s`` naming ``what`` (with ``log``'s tail)."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s\n{tail}")
        time.sleep(0.05)


class ConsoleStack:
    """The running processes and where they listen (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data_dir = directory / "data"
        self.db_url = f"sqlite:///{self.data_dir / 'occ.sqlite3'}"
        self.port, self.admin_port, self.console_port = free_port(), free_port(), free_port()
        self.metrics_port, self.export_metrics_port = free_port(), free_port()
        self.console_url = f"http://127.0.0.1:{self.console_port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.redis: RedisProcess | None = None
        self.erp_url = ""
        self.tokens: dict[str, str] = {}

    @classmethod
    def start(cls, directory: Path) -> ConsoleStack:
        stack = cls(directory)
        try:
            stack._start()
        except BaseException:
            stack.stop()
            raise
        return stack

    def env(self, **extra: str) -> dict[str, str]:
        """An operator's environment: the store, Redis, the servers, the admin token; no other OCC_ setting."""
        assert self.redis is not None
        env = {key: value for key, value in os.environ.items() if not key.startswith("OCC_")}
        env.update(OCC_DATA_DIR=str(self.data_dir), OCC_REDIS_URL=self.redis.url, OCC_DB_URL=self.db_url,
                   OCC_SERVER=f"127.0.0.1:{self.port}", OCC_ADMIN_SERVER=f"127.0.0.1:{self.admin_port}",
                   OCC_CONSOLE_LISTEN=f"127.0.0.1:{self.console_port}", OCC_TOKEN=self.tokens.get("admin", ""),
                   OCC_CONSOLE_METRICS=f"http://127.0.0.1:{self.export_metrics_port}/metrics",
                   PYTHONPATH=str(REPO), **extra)  # fmt: skip
        return env

    def occ(self, *args: str, timeout_s: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``occ ARGS`` to the end; its output as text (raises on a non-zero exit status with ``check``)."""
        done = subprocess.run([*OCC, *args], cwd=REPO, env=self.env(), capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"occ {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``occ ARGS`` in the background (its output in ``<directory>/<name>.log``)."""
        with (self.directory / f"{name}.log").open("wb") as log:
            process = subprocess.Popen([*OCC, *args], cwd=REPO, env=self.env(), stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True)
        self.redis = start_redis_server(self.directory / "redis")
        for name, role in (("admin", "admin"), ("viewer", "viewer")):
            self.tokens[name] = self.occ("token", "create", f"e2e-{name}", "--role", role).stdout.split()[0]

        sim = self.spawn("erp-sim", "erp-sim", "--port", "0")
        wait_until("erp-sim listening", lambda: "listening on" in self.log("erp-sim"),
                   log=self.directory / "erp-sim.log")  # fmt: skip
        self.erp_url = self.log("erp-sim").split("listening on ", 1)[1].split()[0]
        assert sim.poll() is None

        self.spawn("serve", "serve", "--port", str(self.port), "--metrics-port", str(self.metrics_port),
                   "--admin-listen", f"127.0.0.1:{self.admin_port}", "--tariff", str(EXAMPLE_TARIFF),
                   "--settle")  # fmt: skip
        wait_until("the console answering", self._console_up, log=self.directory / "serve.log")
        self.spawn("export", "export", "--erp-url", self.erp_url, "--poll-s", "0.2", "--backoff-s", "0.2",
                   "--timeout-s", "5", "--metrics-port", str(self.export_metrics_port))  # fmt: skip

    def _console_up(self) -> bool:
        if self.processes["serve"].poll() is not None:
            raise AssertionError(f"occ serve exited {self.processes['serve'].returncode}:\n{self.log('serve')}")
        try:
            return httpx.get(f"{self.console_url}/sign-in", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """SIGTERM every process (the last started first), then kill what is still running after 20 s; stop Redis."""
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self.redis is not None:
            self.redis.stop()

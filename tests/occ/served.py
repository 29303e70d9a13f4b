"""A server process started by a test, with its combined output (JSON log lines) in a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def clean_environment(*paths: Path) -> dict[str, str]:
    """This process's environment without OCC settings or a metrics dir, with ``paths`` on PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OCC_")}
    env["OCC_SETTLE"] = "false"  # no settlement worker beside the server unless a test asks for one
    env["OCC_ADMIN_LISTEN"] = ""  # no Admin listener (on a fixed port) unless a test gives one (--admin-listen)
    env["OCC_CONSOLE_LISTEN"] = ""  # no console on 127.0.0.1:8080 unless a test gives a free port
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *map(str, paths)])
    return env


class Served:
    """A server process with its combined stdout/stderr in a file; ``port``/``metrics_port`` are the caller's notes."""

    def __init__(
        self, args: list[str], log_path: Path, env: dict[str, str], *, port: int = 0, metrics_port: int = 0
    ) -> None:
        self.log_path, self.port, self.metrics_port = log_path, port, metrics_port
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(args, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text().splitlines() if line.startswith("{")]

    def messages(self, msg: str) -> list[dict]:
        return [record for record in self.records() if record["msg"] == msg]

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server never got to {what!r}; log:\n{self.text()}")
            time.sleep(0.05)

    def listening(self, count: int = 1) -> None:
        self.wait_for(f"{count} listening", lambda: len(self.messages("listening")) >= count)

    def stop(self, timeout_s: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

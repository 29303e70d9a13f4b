"""A private PostgreSQL server for tests: ``initdb`` into a temporary directory, started on a free loopback port.

Found on PATH or under ``/usr/lib/postgresql/*/bin`` (``scripts/setup.sh`` installs Debian's ``postgresql`` when
neither has it). PostgreSQL refuses to run as root, so as root the cluster is owned by and run as ``postgres``.
The server runs with fsync off (a test database need not survive a power cut) and is removed on stop. Under
pytest-xdist each worker process starts its own (in its own temporary directory, on its own free port).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

SERVICE_USER = "postgres"
PORT_ATTEMPTS = 5  # a free port can be taken between choosing it and the server binding it


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{name} not found: PostgreSQL server binaries are needed (run scripts/setup.sh)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One running cluster; :meth:`new_database` gives each test an empty database of its own."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="occ-pg-"))
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.directory, SERVICE_USER)
            self._as = ["runuser", "-u", SERVICE_USER, "--"]
        data = str(self.directory / "data")
        self._run(_binary("initdb"), "-D", data, "-U", "occ", "-A", "trust", "--no-sync", "-E", "UTF8")
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._run(
                    _binary("pg_ctl"), "-D", data, "-w", "-t", "60", "-l", str(self.directory / "log"), "-o",
                    f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off",
                    "start",
                )  # fmt: skip
                break
            except RuntimeError:
                lost_the_port = "Address already in use" in (self.directory / "log").read_text(errors="replace")
                if attempt == PORT_ATTEMPTS or not lost_the_port:
                    raise
                self.port = _free_port()  # another process (another xdist worker) took it meanwhile
        self._data = data

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://occ@127.0.0.1:{self.port}/{database}"

    def new_database(self, *, template: str = "") -> str:
        """Create a database (empty, or a copy of the database ``template``, which nobody may be connected to) and
        return its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(_binary("pg_ctl"), "-D", self._data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

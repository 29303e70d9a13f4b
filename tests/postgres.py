"""A private PostgreSQL server for tests: ``initdb`` into a temporary directory, started on a free loopback port.

Found on PATH or under ``/usr/lib/postgresql/*/bin`` (``scripts/setup.sh`` installs Debian's ``postgresql`` when
neither has it). PostgreSQL refuses to run as root, so as root the cluster is owned by and run as ``postgres``.
The server runs with fsync off (a test database need not survive a power cut) and is removed on stop. Under
pytest-xdist each worker process starts its own (in its own temporary directory, on its own free port).

With ``tls`` (test certificates, ``tests/certs.py``) it takes TCP connections over TLS only (``hostssl``; plain TCP
is rejected), and with ``client_certificates`` only from a client whose certificate's common name is the user
(``cert`` authentication). Tests create their databases over the Unix socket either way.
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

from certs import Certs

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

    def __init__(self, *, tls: Certs | None = None, client_certificates: bool = False) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="occ-pg-"))
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.directory, SERVICE_USER)
            self._as = ["runuser", "-u", SERVICE_USER, "--"]
        data = str(self.directory / "data")
        self._run(_binary("initdb"), "-D", data, "-U", "occ", "-A", "trust", "--no-sync", "-E", "UTF8")
        tls_options = self._secure(Path(data), tls, client_certificates) if tls else ""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._run(
                    _binary("pg_ctl"), "-D", data, "-w", "-t", "60", "-l", str(self.directory / "log"), "-o",
                    f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off" + tls_options,
                    "start",
                )  # fmt: skip
                break
            except RuntimeError:
                lost_the_port = "Address already in use" in (self.directory / "log").read_text(errors="replace")
                if attempt == PORT_ATTEMPTS or not lost_the_port:
                    raise
                self.port = _free_port()  # another process (another xdist worker) took it meanwhile
        self._data = data

    def _secure(self, data: Path, tls: Certs, client_certificates: bool) -> str:
        """Copy the server's certificate files into the data dir (owned by the server's user, 0600), allow TCP over
        TLS only; return the server options that turn TLS on."""
        for source, name in ((tls.server_cert, "server.crt"), (tls.server_key, "server.key"), (tls.ca, "root.crt")):
            target = data / name
            shutil.copyfile(source, target)
            os.chmod(target, 0o600)
            if self._as:
                shutil.chown(target, SERVICE_USER)
        method = "cert" if client_certificates else "trust"
        (data / "pg_hba.conf").write_text(
            f"local all all trust\nhostssl all all 127.0.0.1/32 {method}\nhostnossl all all 0.0.0.0/0 reject\n"
        )
        return " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=root.crt"

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
        # Over the Unix socket: a server taking TLS only would refuse a plain TCP connection.
        with psycopg.connect(host=str(self.directory), port=self.port, user="occ", dbname="postgres",
                             autocommit=True) as connection:  # fmt: skip
            connection.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(_binary("pg_ctl"), "-D", self._data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

"""Run private ``redis-server`` processes on loopback: the embedded store of ``occ serve``, and test servers.

Each server lives in its own directory (config-less: everything is on the command line), logs to ``redis.log``
there, listens on 127.0.0.1 only, runs in its own session (a Ctrl-C meant for ``occ serve`` does not reach it, so
the server outlives the workers' graceful stop) and, on Linux with ``setpriv``, stops when the thread that started
it dies (so a killed ``occ serve`` or test run leaves no server behind). A server started with a password
(``requirepass``) reads it from its standard input at start-up, so it never shows on a command line.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REDIS_SERVER = "redis-server"
LOG_NAME = "redis.log"
_PORT_ATTEMPTS = 5
_POLL_S = 0.01
_CLUSTER_BUS_OFFSET = 10000


class RedisStartError(RuntimeError):
    """A redis-server could not be started (not installed, bad option, port taken, not answering)."""


class RedisProcess:
    """A running ``redis-server`` child on ``127.0.0.1:port``; :meth:`stop` ends it and reaps it.

    Attributes:
        process: the child process.
        port: its TCP port on 127.0.0.1.
        directory: its working directory (AOF, cluster config, ``redis.log``).
        password: the default user's password (``requirepass``); empty when the server has none.
    """

    def __init__(self, process: subprocess.Popen[bytes], port: int, directory: Path, password: str = "") -> None:
        self.process = process
        self.port = port
        self.directory = directory
        self.password = password

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``, with ``:<password>@`` when the server has a password."""
        credentials = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{credentials}{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_NAME

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's log (empty if there is none)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def command(self, *args: str, timeout_s: float = 2.0) -> bytes:
        """Send one command and return its reply (simple, integer or bulk string); raise ``OSError`` on failure."""
        return call(self.port, *args, timeout_s=timeout_s, password=self.password)

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the server answers PING; raise :class:`RedisStartError` (with its log) if it dies or hangs."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RedisStartError(
                    f"redis-server on port {self.port} exited with status "
                    f"{self.process.returncode} during start-up; its log ends:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                if self.command("PING", timeout_s=1.0) == b"PONG":
                    return
            if time.monotonic() > deadline:
                self.stop(timeout_s=1.0)
                raise RedisStartError(
                    f"redis-server on port {self.port} did not answer PING within {timeout_s} s; "
                    f"its log ends:\n{self.log_tail()}"
                )
            time.sleep(_POLL_S)

    def stop(self, timeout_s: float = 10.0) -> int:
        """SHUTDOWN (AOF flushed), else SIGTERM, else SIGKILL; reap the process and return its exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.command("SHUTDOWN", timeout_s=timeout_s)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("redis-server did not shut down; terminating it", extra={"pid": self.process.pid})
                self.process.terminate()
                try:
                    self.process.wait(2.0)
                except subprocess.TimeoutExpired:
                    self.process.kill()
        return self.process.wait()

    def __enter__(self) -> RedisProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def call(port: int, *args: str, timeout_s: float = 2.0, password: str = "") -> bytes:
    """One RESP command to 127.0.0.1:port (after ``AUTH`` when ``password`` is given); the reply of a simple, integer
    or bulk type (b"" if the server hung up)."""
    commands = [("AUTH", password), args] if password else [args]
    request = []
    for command in commands:
        request.append(f"*{len(command)}\r\n".encode())
        for arg in command:
            data = arg.encode()
            request.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
        sock.sendall(b"".join(request))
        reader = sock.makefile("rb")
        with reader:
            reply = b""
            for _ in commands:
                reply = _read_reply(reader)
            return reply


def _read_reply(reader: BinaryIO) -> bytes:
    line = reader.readline()
    if not line:
        return b""
    kind, rest = line[:1], line[1:-2]
    if kind == b"-":
        raise OSError(f"redis error: {rest.decode(errors='replace')}")
    if kind == b"$":
        size = int(rest)
        return b"" if size < 0 else reader.read(size + 2)[:-2]
    return rest


def redis_server_path() -> str:
    """The ``redis-server`` executable on PATH; raise :class:`RedisStartError` saying what to do if it is missing."""
    found = shutil.which(REDIS_SERVER)
    if found is None:
        raise RedisStartError(
            "redis-server is not on PATH: install Redis 7 (apt-get install redis-server, or run "
            "scripts/setup.sh), or point redis_url (OCC_REDIS_URL, --redis-url) at a running Redis"
        )
    return found


def free_port(*, cluster_bus: bool = False) -> int:
    """A TCP port on 127.0.0.1 free right now (and, for a cluster node, its bus port ``port + 10000`` too)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        if not cluster_bus:
            return port
        if port + _CLUSTER_BUS_OFFSET <= 65535 and _bindable(port) and _bindable(port + _CLUSTER_BUS_OFFSET):
            return port
    raise RedisStartError("no free loopback port pair for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def with_parent_death_signal(args: list[str]) -> list[str]:
    """``args`` run through util-linux ``setpriv --pdeathsig TERM`` when it exists (Linux): the server gets SIGTERM
    (a clean shutdown) if the thread that started it dies. Done with ``setpriv`` rather than a ``preexec_fn`` so
    that no Python code runs between fork and exec (grpc's fork handlers complain, and it is unsafe with threads).
    The one way OCC ties a child command's life to its parent: the embedded Redis and ``occ serve``'s settlement
    worker both use it.
    """
    setpriv = shutil.which("setpriv") if sys.platform == "linux" else None
    return [setpriv, "--pdeathsig", "TERM", "--", *args] if setpriv else args


def start_redis_server(
    directory: Path,
    *,
    port: int | None = None,
    cluster: bool = False,
    appendonly: bool = False,
    appendfsync: str = "everysec",
    timeout_s: float = 10.0,
    extra_args: Sequence[str] = (),
    password: str = "",
) -> RedisProcess:
    """Start ``redis-server`` in ``directory`` (created) on ``port`` (default: a free one) and wait until it answers.

    ``appendonly`` turns on the AOF (``appendonlydir/`` in ``directory``) with ``appendfsync`` (``everysec`` or
    ``always``); RDB snapshots are always off. ``cluster`` enables cluster mode (``nodes.conf``). ``password``
    (letters and digits) becomes the default user's ``requirepass``, handed over on the server's standard input.
    Raises :class:`RedisStartError` with the tail of the server's log when it fails.
    """
    if password and not password.isalnum():
        raise ValueError("a redis-server password given here must be letters and digits only")
    executable = redis_server_path()
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        chosen = port if port is not None else free_port(cluster_bus=cluster)
        options = {
            "port": str(chosen), "bind": HOST, "protected-mode": "yes", "dir": str(directory), "daemonize": "no",
            "logfile": str(directory / LOG_NAME), "save": "", "appendonly": "yes" if appendonly else "no",
            "appendfsync": appendfsync,
        }  # fmt: skip
        if cluster:
            options |= {"cluster-enabled": "yes", "cluster-config-file": str(directory / "nodes.conf"),
                        "cluster-node-timeout": "5000"}  # fmt: skip
        args = [executable, *(part for name, value in options.items() for part in (f"--{name}", value))]
        args += list(extra_args)
        if password:
            args.append("-")  # a last argument "-": more configuration on standard input
        with (directory / LOG_NAME).open("ab") as output:  # start-up errors before the log is opened land here too
            process = subprocess.Popen(
                with_parent_death_signal(args),
                stdin=subprocess.PIPE if password else subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        if password:
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError), process.stdin:
                process.stdin.write(f"requirepass {password}\n".encode())
        server = RedisProcess(process, chosen, directory, password)
        try:
            server.wait_ready(timeout_s)
        except RedisStartError:
            in_use = "Address already in use" in server.log_tail(5)
            if port is None and in_use and attempt < _PORT_ATTEMPTS:
                continue  # lost the race for the free port; try another
            raise
        log.debug("redis-server started", extra={"pid": process.pid, "port": chosen, "dir": str(directory)})
        return server
    raise AssertionError("unreachable")

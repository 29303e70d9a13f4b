"""The private Redis of ``occ serve`` when no ``redis_url`` is configured: ``<data_dir>/redis/``, AOF on.

::

    with EmbeddedRedis(settings.data_dir) as redis:      # or: async with …, or start() / stop()
        settings = msgspec.structs.replace(settings, redis_url=redis.url)

The server keeps its data across restarts (the AOF in ``<data_dir>/redis/appendonlydir``), listens on 127.0.0.1
on a free port, logs to ``<data_dir>/redis/redis.log`` and is stopped with SHUTDOWN (the AOF is flushed).

It requires a password, so that another local user (or a browser tricked into talking to a loopback port) cannot
read or change the books: 64 random hex digits generated on the first start and kept in ``<data_dir>/redis/password``
(mode 0600, reused on every restart). :attr:`EmbeddedRedis.url` carries it; ``occ settle`` and the other commands
that find the server through :func:`running_url` read it from that file.

With ``keep_alive`` (as ``occ serve`` runs it) a server that dies on its own is started again on the same port
with the same AOF by a keeper thread, so clients reconnect by themselves; at most ``MAX_RESTARTS`` times within
``RESTART_WINDOW_S``, after which it stays down (and the servers' health stays NOT_SERVING). The keeper thread
starts the new server and lives until :meth:`EmbeddedRedis.stop`: a server's parent-death signal is tied to the
thread that started it. A server started again gets the same password (the same file).
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import stat
import threading
import time
from pathlib import Path
from urllib.parse import quote

from occ.store.process import RedisProcess, RedisStartError, start_redis_server

log = logging.getLogger(__name__)

PID_NAME = "redis.pid"
URL_NAME = "redis.url"  # where other commands (occ settle, occ reconcile) find the running server
PASSWORD_NAME = "password"  # the server's password, mode 0600 (the URL file holds none)
PASSWORD_BYTES = 32
KEEPER_POLL_S = 0.1
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


class EmbeddedRedis:
    """A ``redis-server`` owned by this process, under ``<data_dir>/redis``.

    Attributes:
        directory: ``<data_dir>/redis``: the AOF, ``redis.log`` and ``redis.pid``.
        appendfsync: ``everysec`` (at most about a second of writes lost on a crash) or ``always`` (none).
        port: the TCP port asked for; ``None`` picks a free one.
        timeout_s: how long start-up may take (replaying a large AOF takes a while).
        keep_alive: start the server again when it dies on its own (see the module docstring).
        restarts: how many times it was started again.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        appendfsync: str = "everysec",
        port: int | None = None,
        timeout_s: float = 60.0,
        keep_alive: bool = False,
    ) -> None:
        self.directory = Path(data_dir).resolve() / "redis"
        self.appendfsync = appendfsync
        self.port = port
        self.timeout_s = timeout_s
        self.keep_alive = keep_alive
        self.restarts = 0
        self._server: RedisProcess | None = None
        self._lock = threading.Lock()  # held while the server is started or stopped
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``redis://:<password>@127.0.0.1:<port>/0`` of the running server."""
        if self._server is None:
            raise RuntimeError("the embedded Redis is not running")
        return self._server.url

    @property
    def pid(self) -> int | None:
        return None if self._server is None else self._server.process.pid

    def start(self) -> None:
        """Start the server and wait until it answers PING (blocks: tens of ms, longer while a big AOF loads).

        Raises :class:`~occ.store.process.RedisStartError` when redis-server is missing, fails, or another
        redis-server still runs on this directory.
        """
        if self._server is not None:
            raise RuntimeError("the embedded Redis is already running")
        self._stopping.clear()
        self._server = self._start_server(self.port)
        if self.keep_alive:
            self._keeper = threading.Thread(target=self._keep, name="embedded-redis-keeper", daemon=True)
            self._keeper.start()

    def _start_server(self, port: int | None) -> RedisProcess:
        self._refuse_if_owned()
        server = start_redis_server(
            self.directory,
            port=port,
            appendonly=True,
            appendfsync=self.appendfsync,
            timeout_s=self.timeout_s,
            extra_args=("--pidfile", str(self.directory / PID_NAME)),
            password=password(self.directory),
        )
        plain_url = f"redis://127.0.0.1:{server.port}/0"  # no password: that stays in its own file
        (self.directory / URL_NAME).write_text(plain_url + "\n")
        log.info(
            "embedded redis-server started",
            extra={"url": plain_url, "pid": server.process.pid, "dir": str(self.directory)},
        )
        return server

    def stop(self, timeout_s: float = 10.0) -> None:
        """SHUTDOWN the server (flushing the AOF) and reap it; nothing happens if it is not running."""
        self._stopping.set()
        with self._lock:
            server, self._server = self._server, None
            if server is not None:
                (self.directory / URL_NAME).unlink(missing_ok=True)
                status = server.stop(timeout_s=timeout_s)
                if status == 0:
                    log.info("embedded redis-server stopped", extra={"pid": server.process.pid})
                else:
                    log.warning("embedded redis-server exited with status %s; log ends:\n%s", status, server.log_tail())
        keeper, self._keeper = self._keeper, None
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join()

    def _keep(self) -> None:
        """The keeper thread: start the server again whenever it died on its own, until stopped or out of tries."""
        started: collections.deque[float] = collections.deque(maxlen=MAX_RESTARTS)
        while not self._stopping.wait(KEEPER_POLL_S):
            with self._lock:
                server = self._server
                if self._stopping.is_set() or server is None or server.process.poll() is None:
                    continue
                log.error(
                    "embedded redis-server died; starting it again with its AOF",
                    extra={"pid": server.process.pid, "status": server.process.returncode, "log": server.log_tail(5)},
                )
                if len(started) == MAX_RESTARTS and time.monotonic() - started[0] < RESTART_WINDOW_S:
                    log.critical("embedded redis-server died %d times within %.0f s; leaving it down",
                                 MAX_RESTARTS + 1, RESTART_WINDOW_S)  # fmt: skip
                    return
                started.append(time.monotonic())
                try:
                    self._server = self._start_server(server.port)
                    self.restarts += 1
                except RedisStartError as error:
                    log.error("embedded redis-server could not be started again: %s", error)

    def _refuse_if_owned(self) -> None:
        """Raise if ``redis.pid`` names a live redis-server: two servers must never write one AOF."""
        pid_file = self.directory / PID_NAME
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            # redis rewrites its process title, but it works in its data dir: that tells it is ours
            ours = os.readlink(f"/proc/{pid}/cwd") == str(self.directory.resolve())
        except OSError:
            cmdline, ours = (b"redis-server", True) if _alive(pid) else (b"", False)
        if b"redis-server" in cmdline and ours:
            raise RedisStartError(
                f"a redis-server (pid {pid}) is still running on {self.directory}; "
                f"stop it (kill {pid}) or use another data dir"
            )

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedRedis:
        self.start()  # in the loop's thread on purpose: the server is tied to the thread that started it
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def password(directory: Path) -> str:
    """The embedded server's password, kept in ``directory/password`` (mode 0600): read, or made on first use.

    A file that others may read is tightened to 0600 (with a warning): the password guards every balance.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PASSWORD_NAME
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _existing_password(path)
    secret = secrets.token_hex(PASSWORD_BYTES)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret


def _existing_password(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the embedded Redis password file was readable by others; made it 0600",
                    extra={"path": str(path), "mode": oct(mode)})  # fmt: skip
        path.chmod(0o600)
    secret = path.read_text().strip()
    if not secret.isalnum():
        raise RedisStartError(f"{path} must hold the embedded Redis password (letters and digits); "
                              "delete it to have a new one made")  # fmt: skip
    return secret


def running_url(data_dir: Path) -> str:
    """The URL (password included) of the embedded Redis an ``occ serve`` runs under ``data_dir``; raises
    RedisStartError if none runs there, or its password file cannot be read."""
    directory = Path(data_dir).resolve() / "redis"
    try:
        url = (directory / URL_NAME).read_text().strip()
        pid = int((directory / PID_NAME).read_text().strip())
    except (OSError, ValueError):
        url, pid = "", 0
    if not url or not _alive(pid):
        raise RedisStartError(
            f"no redis_url is configured and no embedded Redis runs under {directory}: "
            "start `occ serve` with the same data dir, or set --redis-url / OCC_REDIS_URL"
        )
    try:
        secret = (directory / PASSWORD_NAME).read_text().strip()
    except OSError as error:
        raise RedisStartError(
            f"the embedded Redis under {directory} needs its password, and {directory / PASSWORD_NAME} cannot be "
            f"read: {error.strerror or error} (run this command as the user that runs occ serve)"
        ) from None
    return url.replace("redis://", f"redis://:{quote(secret, safe='')}@", 1) if secret else url

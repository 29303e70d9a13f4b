"""The private Redis of ``occ serve`` when no ``redis_url`` is configured: ``<data_dir>/redis/``, AOF on.

::

    with EmbeddedRedis(settings.data_dir) as redis:      # or: async with …, or start() / stop()
        settings = msgspec.structs.replace(settings, redis_url=redis.url)

The server keeps its data across restarts (the AOF in ``<data_dir>/redis/appendonlydir``), listens on 127.0.0.1
on a free port, logs to ``<data_dir>/redis/redis.log`` and is stopped with SHUTDOWN (the AOF is flushed).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from occ.store.process import RedisProcess, RedisStartError, start_redis_server

log = logging.getLogger(__name__)

PID_NAME = "redis.pid"
URL_NAME = "redis.url"  # where other commands (occ settle, occ reconcile) find the running server


class EmbeddedRedis:
    """A ``redis-server`` owned by this process, under ``<data_dir>/redis``.

    Attributes:
        directory: ``<data_dir>/redis``: the AOF, ``redis.log`` and ``redis.pid``.
        appendfsync: ``everysec`` (at most about a second of writes lost on a crash) or ``always`` (none).
        port: the TCP port asked for; ``None`` picks a free one.
        timeout_s: how long start-up may take (replaying a large AOF takes a while).
    """

    def __init__(
        self, data_dir: Path, *, appendfsync: str = "everysec", port: int | None = None, timeout_s: float = 60.0
    ) -> None:
        self.directory = Path(data_dir).resolve() / "redis"
        self.appendfsync = appendfsync
        self.port = port
        self.timeout_s = timeout_s
        self._server: RedisProcess | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` of the running server."""
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
        self._refuse_if_owned()
        self._server = start_redis_server(
            self.directory,
            port=self.port,
            appendonly=True,
            appendfsync=self.appendfsync,
            timeout_s=self.timeout_s,
            extra_args=("--pidfile", str(self.directory / PID_NAME)),
        )
        (self.directory / URL_NAME).write_text(self._server.url + "\n")
        log.info(
            "embedded redis-server started",
            extra={"url": self._server.url, "pid": self._server.process.pid, "dir": str(self.directory)},
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """SHUTDOWN the server (flushing the AOF) and reap it; nothing happens if it is not running."""
        server, self._server = self._server, None
        if server is None:
            return
        (self.directory / URL_NAME).unlink(missing_ok=True)
        status = server.stop(timeout_s=timeout_s)
        if status == 0:
            log.info("embedded redis-server stopped", extra={"pid": server.process.pid})
        else:
            log.warning("embedded redis-server exited with status %s; log ends:\n%s", status, server.log_tail())

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


def running_url(data_dir: Path) -> str:
    """The URL of the embedded Redis an ``occ serve`` runs under ``data_dir``; raises RedisStartError if none."""
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
    return url

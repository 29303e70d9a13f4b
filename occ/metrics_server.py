"""Serve ``/metrics`` over HTTP, for one process or for the worker processes of ``occ serve``.

This module creates no metric, so the parent of the workers can import it without entering multi-process mode
itself. The order matters: :func:`prepare_multiprocess_dir` must run before any worker imports
``prometheus_client`` (spawned workers inherit the environment variable it sets).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.multiprocess import mark_process_dead as _mark_process_dead

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_HELD_LOCKS: list = []


def prepare_multiprocess_dir(directory: Path) -> Path:
    """Create ``directory`` (or empty it of an earlier run's ``*.db`` files); export it as ``PROMETHEUS_MULTIPROC_DIR``.

    Returns the absolute directory. Holds an exclusive lock on ``directory/.lock`` for the life of the process and
    raises ``OSError`` when another server holds it, so a second server never deletes a running one's metrics.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    lock = (directory / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise OSError(f"metrics dir {directory} is in use by another occ serve (same data dir)") from None
    _HELD_LOCKS.append(lock)  # released when the process exits
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def release_multiprocess_dirs() -> None:
    """Release the locks :func:`prepare_multiprocess_dir` took (when the server stops)."""
    while _HELD_LOCKS:
        _HELD_LOCKS.pop().close()


def mark_process_dead(pid: int, directory: Path) -> None:
    """Drop a finished worker's live gauges (``livesum``/``livemax``…) from the aggregate."""
    _mark_process_dead(pid, str(directory))


def serve_metrics(port: int, multiprocess_dir: Path | None, *, host: str = "127.0.0.1") -> Callable[[], None]:
    """Serve ``http://host:port/metrics`` from a daemon thread; return the function that stops it.

    With ``multiprocess_dir``, the page aggregates every worker's files there; without, it is this process's
    default registry. Raises ``OSError`` if the port cannot be bound.
    """
    if multiprocess_dir is None:
        registry = REGISTRY
    else:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(multiprocess_dir))
    try:
        httpd, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise OSError(f"cannot serve /metrics on {host}:{port}: {error.strerror or error}") from None

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5.0)

    return stop

"""``occ serve``: the process model of the charging frontend.

The parent process configures logging, starts the embedded Redis when no ``redis_url`` is set (and stops it last),
starts the settlement worker (``occ settle``, a child process; see :mod:`occ.settle_process`), serves
``/metrics``, and runs the gRPC server: in itself when ``workers`` is 1, otherwise in ``workers`` spawned processes
that all bind the same port (SO_REUSEPORT) and share ``/metrics`` through prometheus-client's multi-process
directory ``<data_dir>/metrics``. SIGINT/SIGTERM stop it gracefully: health turns NOT_SERVING,
in-flight calls get ``grace_s`` to finish, then the app closes. A worker that dies on its own stops the others and
the parent exits 1.

Each worker runs :class:`GrpcServer` on uvloop: the app's services (``occ.app.App``), gRPC health and reflection,
and the metrics interceptor, on the Charging listener and on the authenticated Admin listener (``admin_listen``);
workers share both ports. Once a worker serves, its warm heap is frozen (``occ.core.pauses.freeze_warm_heap``): the
garbage collector never scans what start-up loaded again, so a full collection no longer stalls calls. Before
anything starts the parent checks the TLS files and, on first start, writes the local operator's Admin token to
``<data_dir>/admin-token`` (``occ.api.tokens``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from msgspec.structs import replace

from occ import logs
from occ.api.server import AppFactory, GrpcServer, grpc_address
from occ.api.tls import check_files
from occ.api.tokens import LOCAL_TOKEN_FILE, TOKENS_FILE, TokenError, TokenFile, bootstrap_local_token
from occ.console_process import start_console
from occ.core.pauses import freeze_warm_heap
from occ.metrics_server import (
    mark_process_dead,
    prepare_multiprocess_dir,
    release_multiprocess_dirs,
    serve_metrics,
)
from occ.settings import Settings, is_loopback, split_host_port
from occ.settle_process import start_settlement
from occ.store.client import RedisAccessError, check_access, connect
from occ.store.embedded import EmbeddedRedis
from occ.store.process import RedisStartError, free_port
from occ.store.urls import redacted

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1
_KILL_AFTER_GRACE_S = 10.0  # how long past grace_s a stopping worker may take before it is killed
_ACCESS_CHECK_S = 10.0  # how long the start-up check of Redis credentials and TLS may take


def run(settings: Settings, *, app_factory: AppFactory | None = None) -> int:
    """Serve until SIGINT/SIGTERM; return the exit status (0 after a clean stop, 1 when something failed).

    ``app_factory`` (default ``occ.app.App``) builds each worker's app; with several workers it must be picklable
    (a module-level class or function).
    """
    logs.configure(settings.log_level, settings.log_json)
    with contextlib.ExitStack() as stack:
        embedded = None
        try:
            data_dir = settings.data_dir.resolve()
            try:
                data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise OSError(f"data dir {settings.data_dir}: {error.strerror or error}") from None
            settings = replace(settings, data_dir=data_dir)
            _refuse_taken_address(settings.host, settings.port)
            if settings.admin_listen:
                _refuse_taken_address(*split_host_port(settings.admin_listen))
            if settings.diameter_port:
                _refuse_taken_address(settings.diameter_host or settings.host, settings.diameter_port, "Diameter")
            check_files(settings)
            local_token = _bootstrap_local_token(settings)
            if not settings.redis_url:
                embedded = EmbeddedRedis(data_dir, appendfsync=settings.redis_appendfsync, keep_alive=True)
                embedded.start()
                stack.callback(embedded.stop)
                settings = replace(settings, redis_url=embedded.url)
            _check_redis_access(settings)
            console = _console_wanted(settings)
            settle_metrics = free_port() if console and settings.settle and is_loopback(settings.host) else 0
            if settings.settle:  # (stopped before the embedded Redis: LIFO)
                stack.callback(start_settlement(settings, metrics_port=settle_metrics))
            if console:  # its dashboard reads the settlement worker's lag too
                extra = f"http://127.0.0.1:{settle_metrics}/metrics" if settle_metrics else ""
                urls = ",".join(filter(None, (settings.console_metrics, extra)))
                stack.callback(start_console(replace(settings, console_metrics=urls)))
            multiprocess_dir = prepare_multiprocess_dir(data_dir / "metrics") if settings.workers > 1 else None
            stack.callback(release_multiprocess_dirs)
            if settings.metrics_port:
                stack.callback(serve_metrics(settings.metrics_port, multiprocess_dir, host=settings.host))
        except (RedisStartError, RedisAccessError, OSError, TokenError) as error:
            log.error("cannot start: %s", error)
            return 1
        _announce(settings, embedded, local_token, console)
        if settings.workers == 1:
            return serve_worker(settings, 0, app_factory=app_factory)
        return _supervise(settings, multiprocess_dir, app_factory)
    raise AssertionError("unreachable")


def _console_wanted(settings: Settings) -> bool:
    """Start the console? Only with an Admin listener (it works through it); not when its address is taken (logged:
    the charging server starts all the same, as it does when the console dies later)."""
    if not (settings.console_listen and settings.admin_listen):
        return False
    try:
        _refuse_taken_address(*split_host_port(settings.console_listen), "console")
    except OSError as error:
        log.error("the operator console is not started: %s (console_listen)", error)
        return False
    return True


def _check_redis_access(settings: Settings) -> None:
    """Raise :class:`RedisAccessError` (one clear line) when Redis refuses OCC's credentials, ACL or TLS; a Redis that
    does not answer in time is left to the workers."""

    async def probe() -> None:
        client = connect(settings, pool_size=1)
        try:
            async with asyncio.timeout(_ACCESS_CHECK_S):
                await check_access(client, settings.redis_url)
        except TimeoutError:
            pass
        finally:
            await client.aclose()

    asyncio.run(probe())


def _bootstrap_local_token(settings: Settings) -> Path | None:
    """The local operator's Admin token in ``<data_dir>/admin-token`` (made on first start; see occ.api.tokens)."""
    if not settings.admin_token_bootstrap or not (settings.admin_listen or settings.admin_on_charging_port):
        return None
    tokens = TokenFile(Path(settings.admin_tokens_file or settings.data_dir / TOKENS_FILE))
    written = bootstrap_local_token(settings.data_dir, tokens)
    if written is not None:
        log.info("wrote an Admin token of role admin for the local operator's occ commands",
                 extra={"path": str(written), "tokens_file": str(tokens.path)})  # fmt: skip
    return settings.data_dir / LOCAL_TOKEN_FILE


def _refuse_taken_address(host: str, port: int, what: str = "gRPC") -> None:
    """Raise ``OSError`` if something already listens on host:port. gRPC would otherwise share it through
    SO_REUSEPORT with another server, and clients would reach either one at random."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(f"{what} address {grpc_address(host, port)} is already in use: {error.strerror}") from None


def _worker_main(settings: Settings, worker_index: int, app_factory: AppFactory | None) -> None:
    """A worker process's entry: its exit status is what ``serve_worker`` returned."""
    sys.exit(serve_worker(settings, worker_index, app_factory=app_factory))


def serve_worker(settings: Settings, worker_index: int = 0, *, app_factory: AppFactory | None = None) -> int:
    """Run one gRPC server process on uvloop until SIGTERM (or SIGINT in a single-process server); 0 if clean."""
    parent = multiprocessing.parent_process()
    spawned = parent is not None
    if spawned:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns a Ctrl-C into SIGTERM for every worker
        logs.configure(settings.log_level, settings.log_json, fields={"worker": worker_index})
        if not _stop_with_parent(parent.pid):
            log.error("the parent process is gone; not starting")
            return 1
    try:
        uvloop.run(_serve_until_signal(settings, spawned, app_factory))
    except Exception:
        log.exception("worker failed", extra={"worker": worker_index})
        return 1
    return 0


def _default_app_factory() -> AppFactory:
    """``occ.app.App``, imported only when a server starts (the parent of several workers never needs it)."""
    from occ.app import App

    return App


def _stop_with_parent(parent_pid: int | None) -> bool:
    """On Linux, have the kernel send this worker SIGTERM if its parent dies; False if the parent is already gone."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    return os.getppid() == parent_pid


async def _serve_until_signal(settings: Settings, spawned: bool, app_factory: AppFactory | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM,) if spawned else _STOP_SIGNALS
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    server = GrpcServer(settings, app_factory=app_factory or _default_app_factory())
    try:
        await server.start()
        frozen = freeze_warm_heap()  # started: what is alive now (modules, tariffs, descriptors) lives as long
        log.debug("heap frozen", extra={"objects": frozen})
        await stop.wait()
        log.info("stopping", extra={"grace_s": settings.grace_s})
    finally:
        await server.stop()
        for signum in signals:
            loop.remove_signal_handler(signum)


def _supervise(settings: Settings, multiprocess_dir: Path | None, app_factory: AppFactory | None) -> int:
    """Start the workers, forward stop signals to them, wait; return 1 if any died unasked or had to be killed."""
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker_main, args=(settings, index, app_factory), name=f"occ-worker-{index}")
        for index in range(settings.workers)
    ]  # fmt: skip
    state = {"stopping": False, "failed": False}

    def stop_all(signum: int | None = None, _frame: Any = None) -> None:
        if not state["stopping"]:
            cause = signal.Signals(signum).name if signum else "a worker exited"
            log.info("stopping workers", extra={"cause": cause, "grace_s": settings.grace_s})
        state["stopping"] = True
        for worker in workers:
            if worker.pid is not None and worker.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)

    previous = {signum: signal.signal(signum, stop_all) for signum in _STOP_SIGNALS}
    try:
        for worker in workers:
            if not state["stopping"]:
                worker.start()
        running = [worker for worker in workers if worker.pid is not None]
        deadline: float | None = None
        while running:
            multiprocessing.connection.wait([worker.sentinel for worker in running], timeout=0.5)
            for worker in [worker for worker in running if worker.exitcode is not None]:
                running.remove(worker)
                _reap(worker, multiprocess_dir, state, stop_all)
            if state["stopping"] and deadline is None:
                deadline = time.monotonic() + settings.grace_s + _KILL_AFTER_GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                for worker in running:
                    log.error("worker did not stop in time; killing it", extra={"worker_pid": worker.pid})
                    worker.kill()
                state["failed"] = True
                deadline = float("inf")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 1 if state["failed"] else 0


def _reap(worker: Any, multiprocess_dir: Path | None, state: dict[str, bool], stop_all: Callable[[], None]) -> None:
    worker.join()
    if multiprocess_dir is not None:
        mark_process_dead(worker.pid, multiprocess_dir)
    status = worker.exitcode
    if not state["stopping"]:
        log.error("worker exited unexpectedly; stopping the others", extra={"worker": worker.name, "status": status})
        state["failed"] = True
        stop_all()
    elif status not in (0, -signal.SIGTERM):
        log.error("worker failed while stopping", extra={"worker": worker.name, "status": status})
        state["failed"] = True


def _announce(settings: Settings, embedded: EmbeddedRedis | None, local_token: Path | None, console: bool) -> None:
    address = grpc_address(settings.host, settings.port)
    admin = grpc_address(*split_host_port(settings.admin_listen)) if settings.admin_listen else "off"
    if local_token is not None:
        admin += f" (token for local occ commands: {local_token})"
    redis_url = _redacted(settings.redis_url)
    redis = f"embedded {redis_url} (AOF in {embedded.directory})" if embedded else redis_url
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    metrics_url = f"http://{host}:{settings.metrics_port}/metrics" if settings.metrics_port else "off"
    demo = ""
    if settings.demo_account:
        demo = (f"; demo account {settings.demo_account!r} (try: occ call {settings.demo_account} +442079460000 "
                f"--seconds 90 --server {address})")  # fmt: skip
    grpcurl = f"grpcurl -cacert CA {address} list" if settings.tls else f"grpcurl -plaintext {address} list"
    diameter = "off"
    if settings.diameter_port:
        diameter = (f"{grpc_address(settings.diameter_host or settings.host, settings.diameter_port)} as "
                    f"{settings.diameter_origin_host} (realm {settings.diameter_origin_realm})")  # fmt: skip
    console_url = settings.console_url if console else "off"
    log.info(
        f"occ serve: gRPC on {address} (try: {grpcurl}); Admin on {admin}; console {console_url}; "
        f"TLS {'on' if settings.tls else 'off'}; Diameter {diameter}; data dir {settings.data_dir}; Redis {redis}; "
        f"metrics {metrics_url}; {settings.workers} worker(s){demo}",
        extra={"address": address, "admin_address": admin, "console_url": console_url, "tls": settings.tls,
               "data_dir": str(settings.data_dir),
               "redis_url": redis_url, "redis_embedded": embedded is not None, "metrics_url": metrics_url,
               "workers": settings.workers},
    )  # fmt: skip


def _redacted(url: str) -> str:
    """``url`` (or comma-separated URLs) with any password replaced by ``***``."""
    return redacted(url)

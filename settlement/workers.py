"""Running settlement workers: one in this process, more in processes of their own, and the worker beside a server.

- :func:`run_worker` drains in the calling process until SIGINT/SIGTERM (or, ``once``, until nothing is left),
  reporting as it goes; it returns how many entries it dead-lettered. :func:`settle_here` runs it to its end and
  turns a Redis that cannot be reached (at start, or when asked to stop during an outage) into one clear
  :class:`RedisUnreachable` line instead of a traceback.
- :class:`WorkerPool` starts further worker processes (spawned: booking is CPU-bound, so up to one per core) that
  share the streams with it through the consumer group, each under a consumer name of its own, and stops them: a
  SIGTERM lets each finish the batch in hand.
- :class:`WorkerProcess` supervises one command-line worker (``occ serve``'s, a child process): started, stopped
  with SIGTERM then, after a grace period, killed; its exit status is logged, never raised (the streams keep every
  entry until some worker acknowledges it, so a worker that died loses nothing, it only makes settlement late).

What a worker needs is given to it (:class:`WorkerSpec`, a logging set-up to run in each process): this module
knows nothing of the server's settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from urllib.parse import urlsplit

import msgspec
from redis.exceptions import RedisError
from sqlalchemy import Engine

from settlement import metrics
from settlement.drain import Backlog, Drain, DrainOptions
from settlement.store.database import open_store

log = logging.getLogger(__name__)
Report = Callable[[str], None]
"""Where a worker's progress lines go (for people); None: the summary goes to the log, nothing is printed."""
DEAD_LETTERED = 3
"""Exit status of a ``once`` worker process that dead-lettered entries (and of ``occ settle --once``)."""


class WorkerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What every worker of one ``occ settle`` shares (sent to each worker process).

    Attributes:
        redis_url: the Redis (or Redis Cluster startup nodes) whose streams are drained.
        db_url: the settlement store written to (already migrated).
        shards: the number of virtual shards (one stream each).
        cluster: whether ``redis_url`` is a Redis Cluster.
        options: how each worker drains (its consumer name is made unique per process).
        once: drain what is there, then stop (instead of running until stopped).
        claim_now: first take over every entry pending with any consumer, however recently read (``occ settle
            --claim-now``: after a crash, when no other worker is alive).
    """

    redis_url: str
    db_url: str
    shards: int
    cluster: bool = False
    options: DrainOptions = DrainOptions()
    once: bool = False
    claim_now: bool = False


class RedisUnreachable(Exception):
    """Redis could not be reached (at start, or when the worker was asked to stop during an outage); its text is the
    one line an operator sees (it names the host and port, never credentials)."""


class _StoppedInOutage(Exception):
    """Asked to stop while Redis could not be reached: what the worker held stays pending for the next one."""


def settle_here(engine: Engine, spec: WorkerSpec, *, report: Report | None = None) -> int:
    """:func:`run_worker` to its end in this process (``asyncio.run``); a Redis that cannot be reached raises
    :class:`RedisUnreachable` (the error's own text is kept: it says refused, reset, timed out or which name did not
    resolve)."""
    try:
        return asyncio.run(run_worker(engine, spec, report=report))
    except _StoppedInOutage as error:
        raise RedisUnreachable(
            f"stopped while Redis at {_where(spec.redis_url)} could not be reached ({error}); the entries this worker "
            "held stay pending for the next worker with the same --consumer (or --claim-now)"
        ) from None
    except (RedisError, OSError) as error:
        raise RedisUnreachable(f"Redis at {_where(spec.redis_url)} cannot be reached: {error}") from None


def _where(url: str) -> str:
    """``host:port`` (or the socket path) of a Redis URL, without credentials."""
    first = urlsplit(url.split(",")[0].strip())
    if first.scheme == "unix":
        return first.path
    return f"{first.hostname}:{first.port or 6379}"


async def run_worker(engine: Engine, spec: WorkerSpec, *, report: Report | None = None) -> int:
    """Drain with ``spec`` into ``engine`` in this process: until SIGINT/SIGTERM, or with ``spec.once`` until nothing
    is left. With ``report``: the backlog first, a progress line a second, a summary last. Returns the number of
    entries dead-lettered."""
    async with Drain(spec.redis_url, engine, shards=spec.shards, cluster=spec.cluster, options=spec.options) as drain:
        if report is not None:
            before = await drain.backlog()
            report(f"settle: {before.lag:,} entries to settle, {before.pending:,} pending")
        if spec.claim_now:
            claimed = await drain.claim(idle_s=0)
            if report is not None:
                report(f"settle: took over {claimed:,} entries pending with other workers")
        settled = asyncio.Event()
        progress = asyncio.create_task(_progress(drain, report, settled))
        try:
            left = await drain.drain_once() if spec.once else await _until_signalled(drain)
        finally:
            settled.set()  # not cancel(): a cancel that lands in a Redis call can be swallowed (see Drain.pump)
            await progress
        summary = (
            f"settle ({drain.consumer}): {drain.booked:,} entries booked, {drain.dead_letters:,} dead-lettered; "
            f"left: {left.lag:,} undelivered, {left.pending:,} pending with other workers"
        )
        if spec.once and left.pending:
            summary += (
                f" (a live worker settles them; a dead one's are taken over after {spec.options.claim_idle_s:g} s, or "
                "now with --claim-now or that worker's --consumer name)"
            )
        if report is not None:
            report(summary)
        else:
            log.info(summary)
        return drain.dead_letters


async def _until_signalled(drain: Drain) -> Backlog:
    """Run until SIGINT or SIGTERM, then say what is left (``_StoppedInOutage`` if Redis cannot say)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await drain.run(stop)
    try:
        return await drain.backlog()
    except (RedisError, OSError) as error:
        raise _StoppedInOutage(str(error)) from None


async def _progress(drain: Drain, report: Report | None, stop: asyncio.Event, *, every_s: float = 1.0) -> None:
    """Until ``stop`` is set: the throughput gauge, and (``report``) a progress line a second while entries are
    settled: count, rate, what is left."""
    last, last_t = drain.booked + drain.dead_letters, time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
            return
        done, now = drain.booked + drain.dead_letters, time.monotonic()
        rate = (done - last) / (now - last_t)
        metrics.THROUGHPUT.set(rate)
        if report is not None and done != last:
            try:
                left = await drain.backlog()
            except (RedisError, OSError):  # the worker itself reports and retries an outage
                continue
            eta = f", about {left.lag / rate:,.0f} s left" if rate > 0 and left.lag else ""
            report(f"settle: {done:,} settled, {rate:,.0f}/s, {left.lag:,} to go{eta}")
        last, last_t = done, now


class WorkerPool:
    """``count`` worker processes beside the calling one: ``with WorkerPool(spec, count):`` around :func:`run_worker`.

    Each runs :func:`run_worker` with ``spec`` under the consumer name ``<base>-<n>`` (``<base>``: the spec's
    consumer, else ``<host>-<pid>``), reports only its summary (to the log) and ignores SIGINT (Ctrl-C reaches the
    whole process group: the calling worker stops, then stops the pool). Only the calling worker takes over entries
    at once (``claim_now``): a pool worker doing so too would take what its siblings have just read. ``setup``
    (picklable: a module-level function or a partial of one) runs first in each process, e.g. to configure logging
    as the caller's.
    """

    def __init__(self, spec: WorkerSpec, count: int, *, setup: Callable[[], None] | None = None) -> None:
        self.spec = spec
        self.count = count
        self.setup = setup
        self.processes: list[BaseProcess] = []

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        base = self.spec.options.consumer or f"{socket.gethostname()}-{os.getpid()}"
        for index in range(1, self.count + 1):
            options = msgspec.structs.replace(self.spec.options, consumer=f"{base}-{index}")
            spec = msgspec.structs.replace(self.spec, options=options, claim_now=False)  # the calling worker claims
            process = context.Process(target=_pool_worker, args=(spec, self.setup), name=f"settle-{index}")
            process.start()
            self.processes.append(process)

    def stop(self) -> None:
        """Stop the workers (SIGTERM: each finishes its batch; ``once`` workers stop by themselves) and wait."""
        for process in self.processes:
            if not self.spec.once and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)  # type: ignore[arg-type]  (started: it has a pid)
        for process in self.processes:
            process.join()

    @property
    def failed(self) -> bool:
        """Whether a worker process ended other than by finishing, dead-lettering (``once``) or a SIGTERM."""
        return any(p.exitcode not in (0, DEAD_LETTERED, -signal.SIGTERM) for p in self.processes)

    @property
    def dead_lettered(self) -> bool:
        """Whether a ``once`` worker process dead-lettered entries."""
        return any(p.exitcode == DEAD_LETTERED for p in self.processes)

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _pool_worker(spec: WorkerSpec, setup: Callable[[], None] | None) -> None:
    """A pool's worker process."""
    if setup is not None:
        setup()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        dead = settle_here(open_store(spec.db_url), spec)
    except RedisUnreachable as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)  # one line, as the calling worker's
        sys.exit(1)
    sys.exit(DEAD_LETTERED if spec.once and dead else 0)


class WorkerProcess:
    """One worker run as a command (``occ serve`` runs ``occ settle`` and ``occ console`` so): :meth:`start`, then
    :meth:`stop`; ``name`` is how its log lines call it."""

    def __init__(self, command: Sequence[str], *, env: Mapping[str, str], stop_timeout_s: float = 15.0,
                 name: str = "settlement worker") -> None:  # fmt: skip
        self.command, self.name = list(command), name
        self.env = dict(env)
        self.stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.process = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        """SIGTERM (the batch in hand is finished), a kill after ``stop_timeout_s``; an odd exit status is logged."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.returncode not in (0, -signal.SIGTERM):
            log.warning("%s exited with status %s", self.name, process.returncode)

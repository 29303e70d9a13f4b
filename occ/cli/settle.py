"""``occ settle``: drain the event streams into the SQL store (its schema: ``occ db``, in ``db.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from multiprocessing.process import BaseProcess
from typing import Any
from urllib.parse import urlsplit

import click
import msgspec
from redis.exceptions import RedisError

from occ.cli.store_options import database_url, load_settings, open_database, redis_url, store_options
from occ.logs import configure as configure_logs
from occ.settings import Settings
from settlement.drain import Drain, DrainOptions
from settlement.store.database import open_store

log = logging.getLogger(__name__)


@click.command()
@store_options
@click.option("--once", is_flag=True, help="Drain what is there, then exit (non-zero if entries were dead-lettered).")
@click.option("--consumer", default="", help="This worker's name in the group [<host>-<pid>].")
@click.option("--batch", "read_count", type=click.IntRange(1, 100_000), default=32, show_default=True,
              help="Most entries read from one shard per batch.")  # fmt: skip
@click.option("--claim-idle-s", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Take over entries another worker has held this long.")  # fmt: skip
@click.option("--claim-now", is_flag=True,
              help="First take over every entry pending with any worker, however recently read (after a crash, when "
                   "no other worker is alive).")  # fmt: skip
@click.option("--no-trim", is_flag=True, help="Keep settled entries on the streams.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes sharing the streams (booking is CPU-bound: up to one per core).")  # fmt: skip
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0, help="Serve Prometheus /metrics here [off].")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr, logs only (the worker beside occ serve).")
def settle(config: object, once: bool, consumer: str, read_count: int, claim_idle_s: float, claim_now: bool,
           no_trim: bool, workers: int, metrics_port: int, quiet: bool, **flags: object) -> None:  # fmt: skip
    """Drain the balance-event streams into ledger rows and xDRs in the SQL store.

    Runs until Ctrl-C or SIGTERM; several workers may share the streams (a consumer group). Entries that break the
    event contract go to the shard's dead-letter stream (occ:{sNNN}:events:dead) with the reason.

    After a crash, entries the dead worker had read stay pending with its name: a worker started with the same
    --consumer reads them at once (occ serve names its worker <host>-serve-<port>), --claim-now takes them over
    whatever their name, and otherwise any worker takes them after --claim-idle-s.
    """
    settings = load_settings(config, **flags)  # type: ignore[arg-type]
    configure_logs(settings.log_level, json=settings.log_json)
    options = DrainOptions(consumer=consumer, read_count=read_count, claim_idle_s=claim_idle_s, trim=not no_trim)
    url = redis_url(settings)
    engine = open_database(settings)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.host)
    helpers = _start_helpers(workers - 1, url, settings, options, once)
    try:
        dead = _run(url, lambda: _settle(url, settings.redis_cluster, settings.shards, engine, options, once,
                                         report=not quiet, claim_now=claim_now))  # fmt: skip
    finally:
        for helper in helpers:
            if not once and helper.is_alive():
                os.kill(helper.pid, signal.SIGTERM)  # a clean stop: the batch in hand is finished
        for helper in helpers:
            helper.join()  # with --once, each stops when nothing is left for it
    if any(helper.exitcode not in (0, 3, -signal.SIGTERM) for helper in helpers):
        raise click.ClickException("a settlement worker process failed (see its log above)")
    if once and (dead or any(helper.exitcode == 3 for helper in helpers)):
        raise click.exceptions.Exit(3)


class _StoppedInOutage(Exception):
    """Asked to stop while Redis could not be reached: what the worker held stays pending for the next one."""


def _run(url: str, settle: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run ``settle`` to its end; a Redis that cannot be reached is one clear line (``Error: …``) and exit status 1,
    not a traceback (the error's own text is kept: it says refused, reset, timed out or which name did not resolve)."""
    try:
        return asyncio.run(settle())
    except _StoppedInOutage as error:
        raise click.ClickException(
            f"stopped while Redis at {_where(url)} could not be reached ({error}); the entries this worker held "
            "stay pending for the next worker with the same --consumer (or --claim-now)"
        ) from None
    except (RedisError, OSError) as error:
        raise click.ClickException(f"Redis at {_where(url)} cannot be reached: {error}") from None


def _where(url: str) -> str:
    """``host:port`` (or the socket path) of a Redis URL, without credentials."""
    first = urlsplit(url.split(",")[0].strip())
    if first.scheme == "unix":
        return first.path
    return f"{first.hostname}:{first.port or 6379}"


def _start_helpers(count: int, url: str, settings: Settings, options: DrainOptions, once: bool) -> list[BaseProcess]:
    """``count`` more worker processes, each with a consumer name of its own; they report only their summary."""
    context = multiprocessing.get_context("spawn")
    helpers = []
    base = options.consumer or f"{socket.gethostname()}-{os.getpid()}"
    for index in range(1, count + 1):
        own = msgspec.structs.replace(options, consumer=f"{base}-{index}")
        helper = context.Process(target=_helper_main, args=(url, settings, own, once), name=f"settle-{index}")
        helper.start()
        helpers.append(helper)
    return helpers


def _helper_main(url: str, settings: Settings, options: DrainOptions, once: bool) -> None:
    configure_logs(settings.log_level, json=settings.log_json)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the first worker stops the rest
    engine = open_store(database_url(settings))
    try:
        dead = _run(url, lambda: _settle(url, settings.redis_cluster, settings.shards, engine, options, once,
                                         report=False))  # fmt: skip
    except click.ClickException as error:
        error.show()
        sys.exit(1)
    sys.exit(3 if once and dead else 0)


async def _settle(url: str, cluster: bool, shards: int, engine: object, options: DrainOptions, once: bool, *,
                  report: bool = True, claim_now: bool = False) -> int:  # fmt: skip
    async with Drain(url, engine, shards=shards, cluster=cluster, options=options) as drain:  # type: ignore[arg-type]
        if report:
            before = await drain.backlog()
            click.echo(f"settle: {before.lag:,} entries to settle, {before.pending:,} pending", err=True)
        if claim_now:
            claimed = await drain.claim(idle_s=0)
            if report:
                click.echo(f"settle: took over {claimed:,} entries pending with other workers", err=True)
        reporter = asyncio.create_task(_report(drain, show=report))
        try:
            if once:
                left = await drain.drain_once()
            else:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await drain.run(stop)
                try:
                    left = await drain.backlog()
                except (RedisError, OSError) as error:
                    raise _StoppedInOutage(str(error)) from None
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        summary = (
            f"settle ({drain.consumer}): {drain.booked:,} entries booked, {drain.dead_letters:,} dead-lettered; "
            f"left: {left.lag:,} undelivered, {left.pending:,} pending with other workers"
        )
        if once and left.pending:
            summary += (
                f" (a live worker settles them; a dead one's are taken over after {options.claim_idle_s:g} s, or "
                "now with --claim-now or that worker's --consumer name)"
            )
        if report:
            click.echo(summary, err=True)
        else:
            log.info(summary)
        return drain.dead_letters


async def _report(drain: Drain, *, show: bool, every_s: float = 1.0) -> None:
    """The throughput gauge, and (``show``) a progress line a second while entries are settled: count, rate, what
    is left."""
    from settlement import metrics

    last, last_t = drain.booked + drain.dead_letters, time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        done, now = drain.booked + drain.dead_letters, time.monotonic()
        rate = (done - last) / (now - last_t)
        metrics.THROUGHPUT.set(rate)
        if show and done != last:
            try:
                left = await drain.backlog()
            except (RedisError, OSError):  # the worker itself reports and retries an outage
                continue
            eta = f", about {left.lag / rate:,.0f} s left" if rate > 0 and left.lag else ""
            print(f"settle: {done:,} settled, {rate:,.0f}/s, {left.lag:,} to go{eta}", file=sys.stderr, flush=True)
        last, last_t = done, now

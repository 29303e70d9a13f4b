"""``occ settle`` (drain the event streams into the SQL store) and ``occ db`` (its schema)."""

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
from multiprocessing.process import BaseProcess

import click
import msgspec

from occ.logs import configure as configure_logs
from occ.settings import Settings
from occ.store_cli import database_url, load_settings, open_database, redis_url, store_options
from settlement.drain import Drain, DrainOptions
from settlement.store.database import open_store
from settlement.store.migrate import current, head

log = logging.getLogger(__name__)


@click.group()
def db() -> None:
    """The settlement SQL store's schema."""


@db.command()
@store_options
def upgrade(config: object, **flags: object) -> None:
    """Apply every pending migration (also done by each command that writes)."""
    settings = load_settings(config, **flags)  # type: ignore[arg-type]
    engine = open_database(settings, migrate=False)
    from settlement.store.migrate import upgrade as run_upgrade

    before, after = run_upgrade(engine)
    click.echo(f"{engine.url.render_as_string(hide_password=True)}: {before or 'empty'} → {after}")


@db.command()
@store_options
def status(config: object, **flags: object) -> None:
    """Show the store's schema revision and the newest one."""
    settings = load_settings(config, **flags)  # type: ignore[arg-type]
    engine = open_database(settings, migrate=False, must_exist=True)
    now, newest = current(engine), head()
    click.echo(f"{engine.url.render_as_string(hide_password=True)}: revision {now or 'none'} (newest {newest})")
    if now != newest:
        raise click.exceptions.Exit(1)


@click.command()
@store_options
@click.option("--once", is_flag=True, help="Drain what is there, then exit (non-zero if entries were dead-lettered).")
@click.option("--consumer", default="", help="This worker's name in the group [<host>-<pid>].")
@click.option("--batch", "read_count", type=click.IntRange(1, 100_000), default=32, show_default=True,
              help="Most entries read from one shard per batch.")  # fmt: skip
@click.option("--claim-idle-s", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Take over entries another worker has held this long.")  # fmt: skip
@click.option("--no-trim", is_flag=True, help="Keep settled entries on the streams.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes sharing the streams (booking is CPU-bound: up to one per core).")  # fmt: skip
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0, help="Serve Prometheus /metrics here [off].")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr, logs only (the worker beside occ serve).")
def settle(config: object, once: bool, consumer: str, read_count: int, claim_idle_s: float, no_trim: bool,
           workers: int, metrics_port: int, quiet: bool, **flags: object) -> None:  # fmt: skip
    """Drain the balance-event streams into ledger rows and xDRs in the SQL store.

    Runs until Ctrl-C or SIGTERM; several workers may share the streams (a consumer group). Entries that break the
    event contract go to the shard's dead-letter stream (occ:{sNNN}:events:dead) with the reason.
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
        dead = asyncio.run(
            _settle(url, settings.redis_cluster, settings.shards, engine, options, once, report=not quiet)
        )
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
    dead = asyncio.run(_settle(url, settings.redis_cluster, settings.shards, engine, options, once, report=False))
    sys.exit(3 if once and dead else 0)


async def _settle(url: str, cluster: bool, shards: int, engine: object, options: DrainOptions, once: bool, *,
                  report: bool = True) -> int:  # fmt: skip
    async with Drain(url, engine, shards=shards, cluster=cluster, options=options) as drain:  # type: ignore[arg-type]
        if report:
            before = await drain.backlog()
            click.echo(f"settle: {before.lag:,} entries to settle, {before.pending:,} pending", err=True)
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
                left = await drain.backlog()
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        summary = (
            f"settle ({drain.consumer}): {drain.booked:,} entries booked, {drain.dead_letters:,} dead-lettered; "
            f"left: {left.lag:,} undelivered, {left.pending:,} pending with other workers"
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
            left = await drain.backlog()
            eta = f", about {left.lag / rate:,.0f} s left" if rate > 0 and left.lag else ""
            print(f"settle: {done:,} settled, {rate:,.0f}/s, {left.lag:,} to go{eta}", file=sys.stderr, flush=True)
        last, last_t = done, now

"""``occ settle``: drain the event streams into the SQL store (its schema: ``occ db``, in ``db.py``)."""

from __future__ import annotations

import asyncio
from functools import partial

import click

from occ.cli.store_options import database_url, load_settings, open_database, redis_url, store_options
from occ.logs import configure as configure_logs
from settlement.drain import DrainOptions
from settlement.workers import DEAD_LETTERED, WorkerPool, WorkerSpec, run_worker


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
    spec = WorkerSpec(redis_url=redis_url(settings), db_url=database_url(settings), shards=settings.shards,
                      cluster=settings.redis_cluster, options=options, once=once)  # fmt: skip
    engine = open_database(settings)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.host)
    pool = WorkerPool(spec, workers - 1, setup=partial(configure_logs, settings.log_level, json=settings.log_json))
    with pool:
        dead = asyncio.run(run_worker(engine, spec, report=None if quiet else _echo))
    if pool.failed:
        raise click.ClickException("a settlement worker process failed (see its log above)")
    if once and (dead or pool.dead_lettered):
        raise click.exceptions.Exit(DEAD_LETTERED)


def _echo(line: str) -> None:
    click.echo(line, err=True)

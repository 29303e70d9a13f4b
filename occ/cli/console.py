"""``occ console``: parse the flags, load the settings, open the store, serve the console (see :mod:`occ.console`)."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import click

from occ.cli.store_options import load_settings, open_database, redis_url


@click.command()
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar="OCC_CONFIG",
              help="The server's TOML settings file; also $OCC_CONFIG.")  # fmt: skip
@click.option("--listen", "console_listen", help="host:port to serve on [127.0.0.1:8080]")
@click.option("--admin-listen", help="the server's Admin API, host:port [127.0.0.1:50052]")
@click.option("--metrics-port", type=int, help="the server's /metrics port, 0 for none [9464]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="the server's files [./data]")
@click.option("--db-url", help="settlement store: sqlite:///PATH or postgresql://… [<data dir>/occ.sqlite3]")
def console(config: Path | None, **flags: object) -> None:
    """Serve the operator console (a web application) for the server of these settings until Ctrl-C.

    Sign in with an Admin token: its role decides what you may do (viewer sees; operator changes accounts, sessions
    and tariffs; finance moves money, bills and re-rates; admin does everything). Prints the address it serves. A
    non-loopback --listen needs TLS (the server's tls_cert_file and tls_key_file) or allow_plaintext.
    """
    settings = load_settings(config, **flags)
    if not settings.console_listen:
        raise click.UsageError("console_listen is empty: give --listen host:port")
    engine = open_database(settings)
    from occ.console.context import BalanceCorrections  # here: aiohttp and jinja2 load only when serving
    from occ.console.serve import run

    # Re-rating applies its balance corrections through settlement, on the server's Redis (the console never does).
    corrections = BalanceCorrections(partial(redis_url, settings), settings.shards, settings.redis_cluster)
    asyncio.run(run(settings, engine, corrections=corrections, ready=click.echo))

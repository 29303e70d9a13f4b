"""``occ db``: the settlement SQL store's schema (``occ db upgrade``, ``occ db status``)."""

from __future__ import annotations

import click

from occ.cli.store_options import load_settings, open_database, store_options
from settlement.store.migrate import current, head


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
    engine = open_database(settings, migrate=False)
    now, newest = current(engine), head()
    click.echo(f"{engine.url.render_as_string(hide_password=True)}: revision {now or 'none'} (newest {newest})")
    if now != newest:
        raise click.exceptions.Exit(1)

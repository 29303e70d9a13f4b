"""What every command working on the settlement store shares: its flags, its settings, its Redis and SQL store."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import OperationalError

from occ.settings import Settings, SettingsError
from occ.store.client import full_url
from occ.store.embedded import running_url
from occ.store.process import RedisStartError
from settlement.accounts import NotInBooks, unknown
from settlement.store.database import StoreError, default_url, open_store, reading
from settlement.store.migrate import upgrade

F = TypeVar("F", bound=Callable[..., Any])


def store_options(command: F) -> F:
    """--config, --data-dir, --redis-url and --db-url, collected into ``settings`` (a :class:`Settings`)."""
    options = [
        click.option(
            "--config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            envvar="OCC_CONFIG",
            help="TOML settings file (the server's); also $OCC_CONFIG.",
        ),
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="server files [./data]"),
        click.option("--redis-url", help="the server's Redis [the embedded one running under the data dir]"),
        click.option("--db-url", help="sqlite:///PATH or postgresql://… [<data dir>/occ.sqlite3]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def load_settings(config: Path | None, **flags: Any) -> Settings:
    try:
        return Settings.load(config, **flags)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None


def redis_url(settings: Settings) -> str:
    """The configured Redis (with the credentials and TLS files of the settings in the URL), or the embedded one an
    ``occ serve`` runs under the data dir (with its password)."""
    if settings.redis_url:
        return full_url(settings)
    try:
        return running_url(settings.data_dir)
    except RedisStartError as error:
        raise click.ClickException(str(error)) from None


def database_url(settings: Settings) -> str:
    """The configured store, or the SQLite file in the data dir."""
    return settings.db_url or default_url(settings.data_dir)


def require_accounts(engine: Engine, names: Iterable[str | None]) -> None:
    """Exit with one line when the books do not know one of ``names`` (None: no account named) yet: a finance
    command on an account created but not settled would otherwise answer about nothing."""
    with reading(engine) as connection:
        missing = unknown(connection, [name for name in names if name is not None])
    if missing:
        raise click.ClickException(str(NotInBooks(missing[0])))


def open_database(settings: Settings, *, migrate: bool = True, must_exist: bool = False) -> Engine:
    """The settlement store, reached once (so that a store that refuses us, e.g. a TLS certificate it does not trust,
    is one clear line) and migrated to the newest schema unless ``migrate`` is false; inside a command, closed when
    the command ends (however it ends). With ``must_exist`` (commands that read the books, or change what is in
    them), a SQLite file that is not there is an error naming its path instead of a new, empty store."""
    url = database_url(settings)
    try:
        engine = open_store(url, create=not must_exist)
        if migrate:
            upgrade(engine)
        else:
            engine.connect().close()
    except StoreError as error:
        raise click.ClickException(str(error)) from None
    except OperationalError as error:
        shown = make_url(url).render_as_string(hide_password=True)
        raise click.ClickException(f"cannot open the settlement store {shown}: {error.orig}") from None
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(engine.dispose)
    return engine

"""``occ token``: the bearer tokens of the Admin API, kept hashed in the server's token file.

These commands edit the file directly (``admin_tokens_file``, default ``<data_dir>/admin-tokens.json``), on the
machine where ``occ serve`` runs; the server reads the file again when it changes, so a token counts (or stops
counting) from the next call, without a restart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from occ.api.roles import ROLES
from occ.api.tokens import TOKENS_FILE, TokenError, TokenFile
from occ.settings import Settings, SettingsError

_options = [
    click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar="OCC_CONFIG",
                 help="occ serve's TOML settings (its data_dir and admin_tokens_file); also $OCC_CONFIG."),
    click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="occ serve's data dir [./data]"),
    click.option("--tokens-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="the token file itself [<data dir>/admin-tokens.json]"),
]  # fmt: skip


def _file(config: Path | None, data_dir: Path | None, tokens_file: Path | None) -> TokenFile:
    if tokens_file is not None:
        return TokenFile(tokens_file)
    try:
        settings = Settings.load(config, data_dir=data_dir)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    return TokenFile(Path(settings.admin_tokens_file or Path(settings.data_dir) / TOKENS_FILE))


def _with_file(command):  # type: ignore[no-untyped-def]
    for option in reversed(_options):
        command = option(command)
    return command


@click.group()
def token() -> None:
    """Create, list and revoke the bearer tokens of the Admin API (kept hashed by the server)."""


@token.command()
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do (occ.api.roles).")
@click.option("--replace", is_flag=True, help="Replace an existing token of that name (the old one stops working).")
@_with_file
def create(name: str, role: str, replace: bool, config: Path | None, data_dir: Path | None,
           tokens_file: Path | None) -> None:  # fmt: skip
    """Create a token for NAME and print it, once: only its SHA-256 is kept."""
    tokens = _file(config, data_dir, tokens_file)
    try:
        secret = tokens.create(name, role, replace=replace)
    except TokenError as error:
        raise click.UsageError(str(error)) from None
    click.echo(secret)
    click.echo(f"token {name!r} ({role}) added to {tokens.path}; give it with --token or $OCC_TOKEN. It is not "
               "shown again.", err=True)  # fmt: skip


@token.command("list")
@_with_file
def list_tokens(config: Path | None, data_dir: Path | None, tokens_file: Path | None) -> None:
    """List the tokens: name, role, when created (never the tokens themselves)."""
    tokens = _file(config, data_dir, tokens_file)
    try:
        records = tokens.records()
    except TokenError as error:
        raise click.ClickException(str(error)) from None
    if not records:
        click.echo(f"no tokens in {tokens.path}")
    for record in records:
        created = datetime.fromtimestamp(record.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        click.echo(f"{record.name:<24} {record.role:<9} {created}")


@token.command()
@click.argument("name")
@_with_file
def revoke(name: str, config: Path | None, data_dir: Path | None, tokens_file: Path | None) -> None:
    """Revoke the token of NAME: calls with it are UNAUTHENTICATED from now on."""
    tokens = _file(config, data_dir, tokens_file)
    try:
        found = tokens.revoke(name)
    except TokenError as error:
        raise click.ClickException(str(error)) from None
    if not found:
        raise click.ClickException(f"no token named {name!r} in {tokens.path}")
    click.echo(f"revoked {name!r}")

"""How the ``occ`` commands reach a running server: addresses, TLS files and the Admin token.

Each comes from a flag, else the environment, else the client config file (``--client-config`` or
``$OCC_CLIENT_CONFIG``, TOML with the keys below), else the default:

| key | flag | environment | default |
|---|---|---|---|
| ``server`` | ``--server`` | ``OCC_SERVER`` | ``127.0.0.1:50051`` (Charging: ``occ call``) |
| ``admin_server`` | ``--admin-server`` | ``OCC_ADMIN_SERVER`` | ``127.0.0.1:50052`` (Admin: ``occ account`` …) |
| ``token`` | ``--token`` | ``OCC_TOKEN`` | none |
| ``token_file`` | ``--token-file`` | ``OCC_TOKEN_FILE`` | ``<data_dir>/admin-token`` for a loopback Admin server |
| ``data_dir`` | ``--data-dir`` | ``OCC_DATA_DIR`` | ``./data`` (where ``occ serve`` wrote ``admin-token``) |
| ``ca`` | ``--ca`` | ``OCC_CA`` | none: plaintext, unless ``tls`` |
| ``cert``, ``key`` | ``--client-cert``, ``--client-key`` | ``OCC_CERT``, ``OCC_KEY`` | none (mutual TLS when given) |
| ``tls`` | ``--tls`` | ``OCC_TLS`` | off (on with ``ca`` or ``cert``; alone: the system's CA roots) |
| ``tls_server_name`` | ``--tls-server-name`` | ``OCC_TLS_SERVER_NAME`` | the host dialled |

So on the server's own machine, in the directory ``occ serve`` ran in, ``occ account show demo`` needs nothing: the
Admin address is the default and the token is the one ``occ serve`` wrote to ``./data/admin-token``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import click
import grpc
import msgspec

from occ.api.client import ClientTls, sync_channel
from occ.api.tokens import LOCAL_TOKEN_FILE, TokenError, read_token_file
from occ.settings import SettingsError, is_loopback, load_struct, split_host_port


class ClientSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a command needs to reach a server (see the module's table)."""

    server: str = "127.0.0.1:50051"
    admin_server: str = "127.0.0.1:50052"
    token: str = ""
    token_file: str = ""
    data_dir: Path = Path("data")
    ca: str = ""
    cert: str = ""
    key: str = ""
    tls: bool = False
    tls_server_name: str = ""


class Target(NamedTuple):
    """A server to call: its address, TLS, and the token to send (empty: none)."""

    address: str
    tls: ClientTls
    token: str = ""


def _path(value: str) -> Path | None:
    return Path(value).expanduser() if value else None


def _tls(settings: ClientSettings) -> ClientTls:
    return ClientTls(ca=_path(settings.ca), cert=_path(settings.cert), key=_path(settings.key),
                     server_name=settings.tls_server_name, enabled=settings.tls)  # fmt: skip


def _token(settings: ClientSettings) -> str:
    """The token: given, or read from ``token_file``, or from the data dir for a loopback Admin server."""
    if settings.token:
        return settings.token.strip()
    if settings.token_file:
        return read_token_file(Path(settings.token_file).expanduser())
    local = settings.data_dir / LOCAL_TOKEN_FILE
    try:
        loopback = is_loopback(split_host_port(settings.admin_server)[0])
    except ValueError:
        loopback = False
    return read_token_file(local) if loopback and local.is_file() else ""


_TLS_NAMES = ("ca", "client_cert", "client_key", "tls", "tls_server_name", "client_config")


def _load(flags: dict[str, Any]) -> ClientSettings:
    """The settings from ``flags`` (the command's options; None: not given), the environment and the config file."""
    flags["cert"], flags["key"] = flags.pop("client_cert"), flags.pop("client_key")
    config = flags.pop("client_config", None) or os.environ.get("OCC_CLIENT_CONFIG")
    try:
        return load_struct(ClientSettings, Path(config) if config else None, os.environ, flags)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None


_TLS_OPTIONS = [
    click.option("--ca", default=None, help="PEM CA of the server's certificate: TLS (env OCC_CA)."),
    click.option("--client-cert", "client_cert", default=None, help="Client certificate (PEM): mTLS (env OCC_CERT)."),
    click.option("--client-key", "client_key", default=None, help="Key of --client-cert (env OCC_KEY)."),
    click.option("--tls/--no-tls", default=None, help="TLS with the system's CA roots when no --ca (env OCC_TLS)."),
    click.option("--tls-server-name", default=None, help="Name the server's certificate must carry, when it is not "
                                                         "the host dialled (env OCC_TLS_SERVER_NAME)."),
    click.option("--client-config", type=click.Path(dir_okay=False), default=None,
                 help="TOML file with these settings (env OCC_CLIENT_CONFIG)."),
]  # fmt: skip


def _with_options(command: Callable[..., Any], options: list[Any]) -> Callable[..., Any]:
    for option in reversed(options):
        command = option(command)
    return command


def admin_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the Admin connection flags; the command receives ``target`` (a :class:`Target`) instead."""
    names = ("admin_server", "token", "token_file", "data_dir", *_TLS_NAMES)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        legacy = kwargs.pop("legacy_server")
        if legacy is not None:
            click.echo("warning: --server on Admin commands is deprecated: the Admin API has its own listener now; "
                       "use --admin-server (default 127.0.0.1:50052)", err=True)  # fmt: skip
            kwargs["admin_server"] = kwargs["admin_server"] or legacy
        settings = _load({name: kwargs.pop(name) for name in names})
        try:
            token = _token(settings)
        except TokenError as error:
            raise click.UsageError(str(error)) from None
        return command(*args, target=Target(settings.admin_server, _tls(settings), token), **kwargs)

    return _with_options(wrapper, [
        click.option("--admin-server", default=None,
                     help="The Admin API's address, host:port (env OCC_ADMIN_SERVER).  [default: 127.0.0.1:50052]"),
        click.option("--server", "legacy_server", default=None, hidden=True),  # the old spelling, for a release
        click.option("--token", default=None, help="Admin bearer token (env OCC_TOKEN; see occ token create)."),
        click.option("--token-file", default=None, help="File holding the token (env OCC_TOKEN_FILE).  [default: "
                                                        "<data dir>/admin-token for a loopback server]"),
        click.option("--data-dir", default=None, help="occ serve's data dir, where its admin-token is (env "
                                                      "OCC_DATA_DIR).  [default: ./data]"),
        *_TLS_OPTIONS,
    ])  # fmt: skip


def charging_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the Charging connection flags; the command receives ``target`` (a :class:`Target`, no token)."""
    names = ("server", *_TLS_NAMES)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        settings = _load({name: kwargs.pop(name) for name in names})
        return command(*args, target=Target(settings.server, _tls(settings)), **kwargs)

    return _with_options(wrapper, [
        click.option("--server", default=None,
                     help="The Charging API's address, host:port (env OCC_SERVER).  [default: 127.0.0.1:50051]"),
        *_TLS_OPTIONS,
    ])  # fmt: skip


@contextlib.contextmanager
def channel_to(target: Target) -> Iterator[grpc.Channel]:
    """A channel to ``target``; a gRPC error becomes ``error: <status>: <details>`` on stderr and exit status 1."""
    try:
        channel = sync_channel(target.address, target.tls, token=target.token)
    except (OSError, ValueError) as error:
        raise click.UsageError(f"TLS files: {error}") from None
    with channel:
        try:
            yield channel
        except grpc.RpcError as error:
            status = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            click.echo(f"error: {status}: {details}", err=True)
            if status == "UNAUTHENTICATED" and not target.token:
                click.echo("hint: give a token (--token, $OCC_TOKEN or --token-file); on the server's machine the "
                           "token occ serve wrote to <data dir>/admin-token is used by default", err=True)  # fmt: skip
            raise click.exceptions.Exit(1) from None

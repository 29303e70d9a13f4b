"""``occ serve``: parse the flags, load the settings, run the server (see :mod:`occ.server`)."""

from __future__ import annotations

from pathlib import Path

import click

from occ.settings import Settings, SettingsError


@click.command()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="OCC_CONFIG",
    help="TOML settings file (keys are the setting names); also $OCC_CONFIG.",
)
@click.option("--host", help="address to listen on [127.0.0.1]")
@click.option("--port", type=int, help="gRPC port [50051]")
@click.option("--metrics-port", type=int, help="Prometheus /metrics port, 0 for none [9464]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="server files [./data]")
@click.option("--redis-url", help="redis://host:port/db of a running Redis [none: start one under the data dir]")
@click.option("--workers", type=int, help="server processes sharing the port [1]")
@click.option("--tariff", "tariff_dir", help="tariff directory to load at start if none is current")
@click.option("--settle/--no-settle", default=None, help="run a settlement worker beside the server [on]")
@click.option("--db-url", help="settlement store: sqlite:///PATH or postgresql://… [<data dir>/occ.sqlite3]")
@click.option("--demo", "demo_account", flag_value="demo", default=None, help="create account 'demo' with 10.00 credit")
@click.option("--admin-listen", help="host:port of the authenticated Admin API, '' for none [127.0.0.1:50052]")
@click.option("--tls-cert", "tls_cert_file", help="server certificate chain (PEM): TLS on every listener")
@click.option("--tls-key", "tls_key_file", help="key of --tls-cert (PEM)")
@click.option("--tls-client-ca", "tls_client_ca_file", help="CA of client certificates (PEM), for mutual TLS")
@click.option("--tls-client-auth", type=click.Choice(["none", "required"]), help="client certificates [none]")
@click.option(
    "--allow-plaintext/--no-allow-plaintext",
    default=None,
    help="serve without TLS on an address that is not loopback, on purpose [refused]",
)
@click.option("--console-listen", help="host:port of the operator console, '' for none [127.0.0.1:8080]")
@click.option("--no-console", is_flag=True, help="no operator console (as --console-listen '')")
@click.option("--reflection", type=click.Choice(["auto", "on", "off"]), help="gRPC reflection [auto: on loopback]")
@click.option("--diameter-port", type=int, help="Diameter Gy/Ro gateway port (3868 is the usual one), 0: none [0]")
@click.option("--diameter-peers", help="Diameter peers allowed in: origin-host=address,… (docs/diameter.md)")
def serve(config: Path | None, no_console: bool, **flags: object) -> None:
    """Run the online charging gRPC server until Ctrl-C or SIGTERM.

    Settings come from defaults, then --config, then OCC_<SETTING> environment variables (OCC_PORT=50052,
    OCC_REDIS_URL=…), then these flags. With no Redis configured, a private redis-server runs under the data dir;
    a settlement worker (occ settle) drains the balance events into the SQL store, a SQLite file in the data dir
    unless --db-url says otherwise. The Admin API has its own listener (--admin-listen), where every call needs a
    token or a client certificate; on first start the server writes a token for local occ commands to
    <data dir>/admin-token. The operator console (occ console) runs beside it on --console-listen: sign in there
    with an Admin token. A non-loopback --host needs TLS (--tls-cert, --tls-key) or --allow-plaintext.
    --diameter-port starts the Diameter Gy/Ro gateway beside gRPC, for the peers --diameter-peers lists.
    """
    if no_console:
        flags["console_listen"] = ""
    try:
        settings = Settings.load(config, **flags)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    from occ.server import run  # here: grpc and the server load only when serving

    raise click.exceptions.Exit(run(settings))

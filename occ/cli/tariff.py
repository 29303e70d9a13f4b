"""``occ tariff check`` and ``occ tariff load``, and the tariff loading other commands share (errors: exit 1)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import click

from occ.cli.accounts import TIMEOUT_S, connect, server_option
from occ.v1.admin_pb2 import LoadTariffRequest
from rating_engine import CompiledTariff, TariffError, compile_tariff, load_tariff

TARIFF_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


class LoadedTariff(NamedTuple):
    """A compiled tariff and what it took to get it.

    Attributes:
        compiled: the tariff, ready for ``rate_batch``; ``compiled.tariff`` is the validated model.
        load_ms: time spent reading and validating the CSV files.
        compile_ms: time spent compiling to arrays.
    """

    compiled: CompiledTariff
    load_ms: float
    compile_ms: float


def load(directory: Path) -> LoadedTariff:
    """Load and compile ``directory``; on validation problems print each one to stderr and exit with status 1."""
    started = time.perf_counter()
    try:
        model = load_tariff(directory)
    except TariffError as error:
        for issue in error.issues:
            click.echo(str(issue), err=True)
        click.echo(f"{len(error.issues)} problem(s) in {directory}; the tariff was not loaded", err=True)
        raise click.exceptions.Exit(1) from None
    loaded = time.perf_counter()
    compiled = compile_tariff(model)
    return LoadedTariff(compiled, (loaded - started) * 1e3, (time.perf_counter() - loaded) * 1e3)


def summary(loaded: LoadedTariff) -> list[tuple[str, str]]:
    """(label, value) pairs describing a loaded tariff, for humans."""
    model = loaded.compiled.tariff
    return [
        ("name", model.name),
        ("currency", model.currency),
        ("timezone", model.timezone),
        ("country code", model.country_code or "(none)"),
        ("prefixes", str(len(model.prefixes))),
        ("destination groups", str(len(model.groups))),
        ("rates", str(len(model.rates))),
        ("rate steps", str(sum(len(rate.intervals) for rate in model.rates.values()))),
        ("bands", str(len(model.band_names))),
        ("band windows", str(len(model.bands))),
        ("plans", str(len(model.plans))),
        ("rate-plan rows", str(len(model.bindings))),
        ("content hash", loaded.compiled.hash),
        ("load / compile", f"{loaded.load_ms:.1f} ms / {loaded.compile_ms:.1f} ms"),
    ]


def echo_summary(loaded: LoadedTariff) -> None:
    for label, value in summary(loaded):
        click.echo(f"{label + ':':<20} {value}")


@click.group()
def tariff() -> None:
    """Work with tariff directories (CSV files; see docs/tariffs.md)."""


@tariff.command()
@click.argument("directory", type=TARIFF_DIR)
def check(directory: Path) -> None:
    """Validate and compile the tariff in DIRECTORY; print a summary, or every problem found (exit status 1)."""
    echo_summary(load(directory))


@tariff.command("load")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@server_option
def load_on_server(directory: Path, server: str) -> None:
    """Make the tariff in DIRECTORY current on a running server (and every frontend on its Redis).

    The server reads DIRECTORY itself: it is sent as an absolute path, which must exist where the server runs.
    """
    request = LoadTariffRequest(directory=str(directory.resolve()))
    with connect(server) as stubs:
        answer = stubs.admin.LoadTariff(request, timeout=TIMEOUT_S)
    click.echo(f"{'tariff hash:':<20} {answer.tariff_hash}")
    click.echo(f"{'changed:':<20} {'yes' if answer.changed else 'no (it was already current)'}")
    click.echo(f"{'prefixes:':<20} {answer.prefixes}")
    click.echo(f"{'rates:':<20} {answer.rates}")
    click.echo(f"{'plans:':<20} {', '.join(answer.plans)}")

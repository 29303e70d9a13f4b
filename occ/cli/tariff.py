"""``occ tariff check`` and ``occ tariff load``, and the tariff loading other commands share (errors: exit 1).

``occ tariff load DIR`` uploads the tariff's files to the Admin API (``occ.cli.connection`` says how it is reached).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import click

from occ.api.tariff_source import local_files
from occ.cli.accounts import TIMEOUT_S, connect
from occ.cli.connection import Target, admin_options
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
@click.argument("directory")
@click.option(
    "--on-server",
    is_flag=True,
    help="DIRECTORY is on the server, below its tariff root (relative to it): nothing is uploaded.",
)
@admin_options
def load_on_server(directory: str, on_server: bool, target: Target) -> None:
    """Make the tariff in DIRECTORY current on a running server (and every frontend on its Redis).

    The tariff's CSV files are read here and uploaded, so the server may be on another machine; with --on-server
    the server reads DIRECTORY itself, and only below its tariff root (tariff_root, default <data dir>/tariffs).
    """
    if on_server:
        request = LoadTariffRequest(directory=directory)
    else:
        folder = Path(directory)
        if not folder.is_dir():
            raise click.BadParameter(f"{directory!r} is not a directory here (--on-server names one on the server)",
                                     param_hint="DIRECTORY")  # fmt: skip
        files = local_files(folder)
        if not files:
            raise click.BadParameter(f"{directory!r} holds no tariff files", param_hint="DIRECTORY")
        request = LoadTariffRequest(files=files)
    with connect(target) as stubs:
        answer = stubs.admin.LoadTariff(request, timeout=TIMEOUT_S)
    click.echo(f"{'tariff hash:':<20} {answer.tariff_hash}")
    click.echo(f"{'changed:':<20} {'yes' if answer.changed else 'no (it was already current)'}")
    click.echo(f"{'prefixes:':<20} {answer.prefixes}")
    click.echo(f"{'rates:':<20} {answer.rates}")
    click.echo(f"{'plans:':<20} {', '.join(answer.plans)}")

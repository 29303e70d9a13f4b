"""``occ rate``: price a CDR file (CSV) in batches; every input row comes out with its price or the reason it has none.

Input columns (header required, names case-insensitive, any order; other columns are passed through):
``plan`` (optional with ``--plan``), ``service`` (voice, data or message), ``called`` (as dialled; may be empty),
``start`` (ISO-8601 with a UTC offset, or Unix seconds) and ``usage`` (whole units). A bad cell fails only its row,
with the column named in ``error``; the output file appears whole, by rename, or not at all.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import NamedTuple, TextIO

import click
import numpy as np

from occ.cli.tariff import TARIFF_DIR, load
from rating_engine import CallBatch, CompiledTariff, Service, normalize_number, rate_batch
from rating_engine.money import format_micros

INPUT_COLUMNS = ("plan", "service", "called", "start", "usage")
OUTPUT_COLUMNS = ("destination", "group", "ledger_code", "rate_id", "cost_micros", "cost", "error")
_SERVICES = {service.name.lower(): int(service) for service in Service}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_MAX_DIGITS = 18  # any whole number of up to 18 digits fits in int64; the rater judges the range


class Columns(NamedTuple):
    """Where the input columns are in a row (``plan`` is ``None`` when every row takes ``default_plan``)."""

    plan: int | None
    service: int
    called: int
    start: int
    usage: int
    width: int
    default_plan: str


def find_columns(header: list[str], default_plan: str) -> Columns:
    """Locate the input columns in ``header``; raise ``click.ClickException`` naming any that is missing or taken."""
    names = [cell.strip().lower() for cell in header]
    missing = [c for c in INPUT_COLUMNS if c not in names and not (c == "plan" and default_plan)]
    if missing:
        hint = " (or give --plan)" if "plan" in missing else ""
        raise click.ClickException(f"input has no column {', '.join(missing)}{hint}")
    repeated = sorted({c for c in INPUT_COLUMNS if names.count(c) > 1})
    taken = [c for c in OUTPUT_COLUMNS if c in names]
    if repeated or taken:
        raise click.ClickException(f"input column(s) {', '.join(repeated + taken)} would be ambiguous in the output")
    at = {name: names.index(name) for name in INPUT_COLUMNS if name in names}
    return Columns(at.get("plan"), at["service"], at["called"], at["start"], at["usage"], len(header), default_plan)


def _service(text: str) -> int:
    found = _SERVICES.get(text)
    return int(Service.parse(text)) if found is None else found


def _destination(country_code: str, text: str) -> str:
    return normalize_number(text, country_code) if text.strip() else ""


def _whole(text: str, what: str) -> int:
    digits = text.strip()
    if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_DIGITS:
        return int(digits)
    raise ValueError(f"{text!r} is not {what} (at most {_MAX_DIGITS} digits)")


def _start(text: str) -> int:
    """Unix seconds of an ISO-8601 time with a UTC offset, or of a whole number of Unix seconds."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return _whole(text, "a whole number of Unix seconds")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither ISO-8601 (2026-01-05T09:00:00Z) nor Unix seconds") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or e.g. +01:00)")
    return (when - _EPOCH) // _SECOND


def _usage(text: str) -> int:
    return _whole(text, "a whole number of units")


def _add_error(errors: list[str], i: int, message: str) -> None:
    errors[i] = f"{errors[i]}; {message}" if errors[i] else message


def _parse(column: str, cells: list[str], parser: Callable[[str], object], errors: list[str]) -> list:
    """``parser`` applied to each cell; a failing cell gets ``None`` and its message added to the row's error."""
    values: list = []
    append = values.append
    for i, cell in enumerate(cells):
        try:
            append(parser(cell))
        except ValueError as exc:
            append(None)
            _add_error(errors, i, f"{column}: {exc}")
    return values


def rate_rows(tariff: CompiledTariff, rows: list[list[str]], at: Columns) -> int:
    """Rate ``rows`` (cells of the input) and append the output columns to each row in place; return how many failed."""
    errors = [""] * len(rows)
    for i, row in enumerate(rows):
        if len(row) != at.width:
            errors[i] = f"row has {len(row)} cells but the header has {at.width} columns"
            rows[i] = (row + [""] * at.width)[: at.width]
    if at.plan is None:
        plans = [at.default_plan] * len(rows)
    else:
        plans = [row[at.plan].strip() or at.default_plan for row in rows]
        for i, plan in enumerate(plans):
            if not plan:
                _add_error(errors, i, "plan: is empty (give --plan for a default)")
    services = _parse("service", [row[at.service] for row in rows], _service, errors)
    country_code = tariff.tariff.country_code
    destinations = _parse("called", [row[at.called] for row in rows], partial(_destination, country_code), errors)
    starts = _parse("start", [row[at.start] for row in rows], _start, errors)
    usages = _parse("usage", [row[at.usage] for row in rows], _usage, errors)

    valid = [i for i, error in enumerate(errors) if not error]
    batch = CallBatch.of(
        tariff,
        plans=[plans[i] for i in valid],
        services=[services[i] for i in valid],
        destinations=[destinations[i] for i in valid],
        starts=[starts[i] for i in valid],
        usages=[usages[i] for i in valid],
    )
    rated = rate_batch(tariff, batch)
    groups = np.array([*tariff.group_names, ""], dtype=object)[rated.group].tolist()  # index -1 (none) is ""
    rate_ids = np.array([*tariff.rate_names, ""], dtype=object)[rated.rate].tolist()
    ok = (rated.failure == 0).tolist()
    costs, ledger_codes = rated.cost_micros.tolist(), rated.ledger_code.tolist()
    for j, i in enumerate(valid):
        if ok[j]:
            cost = costs[j]
            rows[i] += (
                destinations[i],
                groups[j],
                str(ledger_codes[j]),
                rate_ids[j],
                str(cost),
                format_micros(cost),
                "",
            )
        else:
            errors[i] = rated.reason(j, batch)
    for i, error in enumerate(errors):
        if error:
            rows[i] += (destinations[i] or "", "", "", "", "", "", error)
    return len(rows) - ok.count(True)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[TextIO]:
    """A text file that replaces ``path`` when the block ends normally; on an exception ``path`` is left untouched."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temp.open("x", newline="", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@click.command()
@click.option("--tariff", "tariff_dir", required=True, type=TARIFF_DIR, help="Tariff directory.")
@click.argument("input_csv", metavar="INPUT.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output CSV.")
@click.option("--batch-size", default=100_000, show_default=True, type=click.IntRange(min=1), help="Rows per batch.")
@click.option("--plan", "default_plan", default="", help="Plan of rows without a plan column or with an empty one.")
def rate(tariff_dir: Path, input_csv: Path, output: Path, batch_size: int, default_plan: str) -> None:
    """Rate a CDR file (CSV) in batches.

    Every row of INPUT.csv is written to OUTPUT with destination, group, ledger_code, rate_id, cost_micros, cost and
    error columns added; a row that cannot be rated has an empty cost and the reason in error.
    """
    if not output.resolve().parent.is_dir():
        raise click.BadParameter(f"directory {output.parent} does not exist", param_hint="'-o'")
    compiled = load(tariff_dir).compiled
    started, total, failed = time.perf_counter(), 0, 0
    with input_csv.open(newline="", encoding="utf-8-sig") as source:
        reader = csv.reader(source)
        try:
            header = next((row for row in reader if row), None)
            if header is None:
                raise click.ClickException(f"{input_csv} has no header row")
            columns = find_columns(header, default_plan)
            with (
                atomic_output(output) as sink,
                click.progressbar(length=input_csv.stat().st_size, label="rating", file=sys.stderr) as bar,
            ):
                writer = csv.writer(sink)
                writer.writerow([*header, *OUTPUT_COLUMNS])
                while chunk := list(itertools.islice(reader, batch_size)):
                    rows = [row for row in chunk if row]  # blank lines are not CDRs
                    failed += rate_rows(compiled, rows, columns)
                    total += len(rows)
                    writer.writerows(rows)
                    bar.update(source.buffer.tell() - bar.pos)
        except (csv.Error, UnicodeDecodeError) as error:
            raise click.ClickException(f"{input_csv}, line {reader.line_num}: {error}") from None
        except OSError as error:  # the output cannot be written (read-only, no permission, a full disk …)
            raise click.ClickException(f"cannot write {output}: {error.strerror or error}") from None
    elapsed = time.perf_counter() - started
    click.echo(
        f"{total:,} rows: {total - failed:,} rated, {failed:,} failed in {elapsed:.2f} s "
        f"({total / max(elapsed, 1e-9):,.0f} rows/s) → {output}",
        err=True,
    )

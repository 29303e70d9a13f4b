"""``occ export billable-items``: a month's BILLABLE xDRs as billable items for SAP Convergent Invoicing, and the
receiver's confirmation. Only parsing and printing: the work is in ``settlement.billable``."""

from __future__ import annotations

import re
from pathlib import Path

import click

from occ.cli.store_options import load_settings, open_database, store_options
from settlement.billable.batches import BatchError, ExportResult, confirm, export, load_confirmation
from settlement.billable.classes import ClassMapError, parse

PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _excluded(result: ExportResult) -> None:
    for item in result.excepted:
        click.echo(f"not exported: {item.id} ({item.account}) {item.status}: {item.reason}")
    for xdr_id, service, ledger_code in result.unclassified:
        click.echo(f"not exported: {xdr_id}: no billable item class for service {service or '-'}, ledger code "
                   f"{ledger_code or '-'} (setting billable_item_classes)")  # fmt: skip


@click.group("billable-items", invoke_without_command=True)
@store_options
@click.option("--period", help="The month to export, YYYY-MM (the xDRs' UTC month).")
@click.option("--simulate", is_flag=True, help="A simulated export: stored apart, changes no status.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The batch file to write [<batch>.csv here: B00000007.csv, S00000008.csv].")  # fmt: skip
@click.pass_context
def billable_items(ctx: click.Context, config: object, period: str | None, simulate: bool, output: Path | None,
                   **flags) -> None:  # fmt: skip
    """Write a month's BILLABLE xDRs as billable items (main items with their tax, payment and text records, by
    billable item class); nothing is marked billed until `occ export billable-items confirm FILE`."""
    if ctx.invoked_subcommand is not None:
        return
    if not period or not PERIOD.fullmatch(period):
        raise click.UsageError(f"--period: give the month as YYYY-MM, got {period!r}")
    settings = load_settings(config, **flags)  # type: ignore[arg-type]
    try:
        classes = parse(settings.billable_item_classes)
    except ClassMapError as error:
        raise click.UsageError(str(error)) from None
    try:
        result = export(open_database(settings, must_exist=True), period, classes, simulate=simulate)
    except BatchError as error:
        raise click.ClickException(str(error)) from None
    _excluded(result)
    if result.label is None:
        click.echo(f"{period}: nothing to export")
        return
    output = output or Path(f"{result.label}.csv")
    output.write_bytes(result.content)
    what = "simulated batch" if simulate else ("open batch, written again" if result.reused else "batch")
    click.echo(f"{period}: {what} {result.label}: {result.main_items} main items, {result.items} xDRs "
               f"({len(result.excepted)} excepted, {len(result.unclassified)} unclassified left out); wrote {output}")
    if not simulate:
        click.echo("  nothing is billed until the receiver confirms it: occ export billable-items confirm FILE")


@billable_items.command("confirm")
@store_options
@click.argument("confirmation", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def confirm_command(config: object, confirmation: Path, **flags) -> None:
    """Apply the receiver's confirmation of a batch (JSON: batch, sha256 of its file, rejected items with reasons):
    its items become BILLED, rejected ones BILLABLE_EXCEPTED."""
    settings = load_settings(config, **flags)  # type: ignore[arg-type]
    try:
        result = confirm(open_database(settings, must_exist=True), load_confirmation(confirmation.read_bytes()))
    except BatchError as error:
        raise click.ClickException(str(error)) from None
    already = " (it was confirmed before: nothing changed)" if result.already else ""
    click.echo(f"batch {result.label}: {result.billed} billed, {result.rejected} rejected, "
               f"{len(result.changed)} no longer billable{already}")  # fmt: skip
    for xdr_id in result.changed:
        click.echo(f"  left as it was (invoiced or excepted since the export): {xdr_id}")

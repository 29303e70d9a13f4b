"""``occ report …``: reports for the accountant, read from the settlement store. Only parsing and printing: the work
is in ``settlement.reports``."""

from __future__ import annotations

from pathlib import Path

import click

from occ.cli.store_options import load_settings, open_database, store_options
from settlement.billing.pdf import FontMissing
from settlement.reports.ledger import ReportError, ledger_report
from settlement.reports.ledger_output import csv_text, pdf_bytes, text
from settlement.store.database import reading

NOT_TIED = 3  # exit status of a report whose tie-out lines are not all zero


@click.group()
def report() -> None:
    """Reports for the accountant: the ledger per ledger code and month, tied out to invoices and the ERP."""


@report.command("ledger")
@store_options
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day: invoices whose period starts on or after it.")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="Last day (inclusive): invoices whose period starts on or before it.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write it as CSV.")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write it as a PDF with a chart.")  # fmt: skip
@click.option("--journals/--no-journals", default=None,
              help="Also tie out to the ERP journals (payments, adjustments, prepaid tax) [erp.journals].")
def ledger_command(config: object, start, end, csv_path: Path | None, pdf_path: Path | None, journals: bool | None,
                   **flags) -> None:  # fmt: skip
    """Per ledger code and month: opening balance, charges, taxes, payments, adjustments, rounding, closing balance,
    and each month's tie-out to its invoices and to the ERP documents, journals included when they are sent (exit
    status 3 when one is not zero)."""
    settings = load_settings(config, **flags)  # type: ignore[arg-type]
    engine = open_database(settings, must_exist=True)
    check_journals = settings.erp.journals if journals is None else journals
    try:
        with reading(engine) as connection:
            result = ledger_report(connection, start.date(), end.date(), journals=check_journals)
    except ReportError as error:
        raise click.ClickException(str(error)) from None
    pdf = None
    if pdf_path:
        try:
            pdf = pdf_bytes(result)
        except FontMissing as error:
            raise click.ClickException(str(error)) from None
    click.echo(text(result), nl=False)
    if csv_path:
        csv_path.write_text(csv_text(result))
        click.echo(f"wrote {csv_path}", err=True)
    if pdf_path and pdf is not None:
        pdf_path.write_bytes(pdf)
        click.echo(f"wrote {pdf_path}", err=True)
    if not result.ties_out:
        raise click.exceptions.Exit(NOT_TIED)

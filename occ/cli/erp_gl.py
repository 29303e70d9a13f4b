"""``occ erp-gl``: the general ledger of the money that is not a charge, OCC's against the ERP's."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import click

from occ.cli.erp_options import auth_of, url_of
from occ.cli.store_options import load_settings, open_database, store_options
from settlement.billing.journal import JournalOptions, LedgerTotal, general_ledger
from settlement.export.security import ErpAuth
from settlement.export.soap_client import ErpClient, ErpError, LedgerBalance

Totals = dict[tuple[str, str], tuple[Decimal, Decimal]]


@click.command("erp-gl")
@store_options
@click.option("--from", "from_date", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day (YYYY-MM-DD).")
@click.option("--to", "to_date", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Last day, inclusive.")
@click.option("--erp-url", envvar="OCC_ERP_URL", help="The middleware's SOAP endpoint; also $OCC_ERP_URL [erp.url].")
@click.option("--timeout-s", type=click.FloatRange(min=0.001), default=30.0, show_default=True,
              help="The most the GetGeneralLedger call may take.")  # fmt: skip
def erp_gl(config: object, from_date, to_date, erp_url: str | None, timeout_s: float,  # type: ignore[no-untyped-def]
           **flags: object) -> None:  # fmt: skip
    """Compare the general ledger of OCC's journals with the ERP's, per G/L account and currency.

    OCC's side comes from the ledger rows (top-ups, payments, refunds, adjustments, prepaid tax) by the posting rule;
    the ERP's from its GetGeneralLedger. Prints both side by side, DIFFERS beside a line that does not agree; exit
    status 1 when they differ.
    """
    settings = load_settings(config, **flags)  # type: ignore[arg-type]
    url = url_of(settings, erp_url)
    first, last = from_date.date(), to_date.date()
    if last < first:
        raise click.UsageError(f"--to {last} is before --from {first}")
    engine = open_database(settings)
    options = JournalOptions(batch=settings.erp.journal_batch,  # type: ignore[arg-type]
                             customer_account=settings.erp.customer_account)  # fmt: skip
    with engine.connect() as connection:
        occ = general_ledger(connection, first, last, options)
    try:
        auth = auth_of(settings, username="", password="", wsse="", cert_file=None, key_file=None, ca_file=None)
        erp = asyncio.run(_erp_ledger(url, timeout_s, auth, first, last))
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    except ErpError as error:
        raise click.ClickException(f"GetGeneralLedger at {url} failed: {error}") from None
    if not _print(_totals(occ), _totals(erp)):
        raise click.exceptions.Exit(1)


async def _erp_ledger(url: str, timeout_s: float, auth: ErpAuth, first: date, last: date) -> list[LedgerBalance]:
    async with ErpClient(url, timeout_s=timeout_s, auth=auth) as client:
        return await client.general_ledger(first, last)


def _totals(lines: list[LedgerTotal] | list[LedgerBalance]) -> Totals:
    return {(x.account_code, x.currency): (x.debit, x.credit) for x in lines}


def _print(occ: Totals, erp: Totals) -> bool:
    """The table; whether both sides agree on every account."""
    zero = (Decimal(0), Decimal(0))
    click.echo(f"{'account':<15} {'currency':<8} {'OCC debit':>14} {'OCC credit':>14} {'ERP debit':>14} "
               f"{'ERP credit':>14}")  # fmt: skip
    same = True
    for key in sorted(set(occ) | set(erp)):
        mine, theirs = occ.get(key, zero), erp.get(key, zero)
        agree = mine == theirs
        same &= agree
        click.echo(f"{key[0]:<15} {key[1]:<8} {mine[0]:>14} {mine[1]:>14} {theirs[0]:>14} {theirs[1]:>14}"
                   f"{'' if agree else '  DIFFERS'}")  # fmt: skip
    click.echo("OCC and the ERP agree" if same else "OCC and the ERP DIFFER")
    return same

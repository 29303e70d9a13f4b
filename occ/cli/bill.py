"""``occ bill …``: billing runs, out-of-turn and re-issued invoices, previews, showing invoices, billing settings.

Only parsing and printing: the work is in ``settlement.billing``. Every command takes the store flags of
``occ settle`` (``--db-url``, ``--data-dir``, ``--config``) and migrates the store first.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import Engine

from occ.cli.store_options import load_settings, open_database, store_options
from occ.cli.types import LEGACY_RATE, percent_of_ppm, renamed, resolved
from rating_engine.money import format_micros
from settlement.accounts import NotInBooks
from settlement.billing import document
from settlement.billing.account_view import AccountView, account_view
from settlement.billing.cycle import describe
from settlement.billing.issue import Outcome
from settlement.billing.parties import bank_lines, printable_lines
from settlement.billing.run import BillingError, RunReport, bill_now, preview_now, run
from settlement.billing.setup import SetupError, set_account, set_customer_class, set_issuer, set_tax_profile
from settlement.billing.tax import MODES, TaxProfile
from settlement.store.database import reading


def _engine(config: object, flags: dict, *, must_exist: bool = False) -> Engine:
    """The store; ``must_exist`` for commands about what is already in it (a missing SQLite file is an error)."""
    return open_database(load_settings(config, **flags), must_exist=must_exist)  # type: ignore[arg-type]


def _outcome(o: Outcome) -> str:
    what = {"ISSUED": "issued", "ALREADY": "already issued", "DRAFT": "left DRAFT", "PREVIEW": "preview"}[o.status]
    ident = f"invoice {o.number:08d} (id {o.invoice_id})" if o.number is not None else f"id {o.invoice_id}"
    problems = "".join(f"\n    - {p}" for p in o.problems)
    return f"{o.account}: {describe(o.period_start_ms, o.period_end_ms, o.timezone)} {what}: {ident}{problems}"


@click.group()
def bill() -> None:
    """Invoices: billing runs, out-of-turn and re-issued invoices, previews, settings."""


@bill.command("run")
@store_options
@click.option("--date", "run_date", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="Close every period that ended by this date (local midnight of it, per account).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Store previews instead: nothing is numbered or marked billed.")
@click.option("--account", "accounts", multiple=True, metavar="ACCOUNT", help="Only these accounts (repeatable).")
@click.option("--quiet", is_flag=True, help="Print the summary only.")
def run_command(config: object, run_date, dry_run: bool, accounts: tuple[str, ...], quiet: bool, **flags) -> None:
    """Close billing periods: one invoice per account and period, at most once (safe to run twice)."""
    engine = _engine(config, flags)

    def progress(done: int, total: int) -> None:
        if done == total or done % 1000 == 0:
            print(f"bill run: {done:,}/{total:,} accounts", file=sys.stderr, flush=True)

    try:
        report = run(engine, run_date.date(), preview=dry_run, accounts=list(accounts) or None, progress=progress)
    except (BillingError, NotInBooks) as error:
        raise click.ClickException(str(error)) from None
    _print_report(report, quiet)


def _print_report(report: RunReport, quiet: bool) -> None:
    if not quiet:
        for outcome in report.outcomes:
            if outcome.status != "ALREADY":
                click.echo(_outcome(outcome))
    for item in report.excepted:
        click.echo(f"not billed: {item['id']} ({item['account']}) {item['status']}: {item['reason']}")
    kind = "previews stored" if report.preview else "invoices issued"
    click.echo(f"run {report.run_id} ({report.run_date}): {report.issued} {kind}, {report.already} already issued, "
               f"{report.drafts} left DRAFT, {len(report.excepted)} excepted items not billed")  # fmt: skip
    if report.drafts:
        raise click.exceptions.Exit(2)


@bill.command("now")
@store_options
@click.argument("account")
@click.option("--dry-run", is_flag=True, help="Store a preview instead of issuing.")
def now_command(config: object, account: str, dry_run: bool, **flags) -> None:
    """Issue an out-of-turn invoice for ACCOUNT up to now; its next period starts now."""
    engine = _engine(config, flags, must_exist=True)
    try:
        outcome = preview_now(engine, account) if dry_run else bill_now(engine, account)
    except (BillingError, NotInBooks) as error:
        raise click.ClickException(str(error)) from None
    click.echo(_outcome(outcome))
    if outcome.status == "DRAFT":
        raise click.exceptions.Exit(2)


@bill.command("reissue")
@store_options
@click.argument("invoice")
def reissue_command(config: object, invoice: str, **flags) -> None:
    """Re-issue INVOICE (id, number or tenant:number) after re-rating, as a new revision (credit note + invoice)."""
    from settlement.billing.reissue import reissue

    engine = _engine(config, flags, must_exist=True)
    with engine.connect() as connection:
        invoice_id = document.find(connection, invoice)
    if invoice_id is None:
        raise click.ClickException(f"no invoice {invoice!r}")
    try:
        outcome = reissue(engine, invoice_id)
    except BillingError as error:
        raise click.ClickException(str(error)) from None
    click.echo(_outcome(outcome) + f", revision {outcome.revision}")
    if outcome.status == "DRAFT":
        raise click.exceptions.Exit(2)


@bill.command("show")
@store_options
@click.argument("invoice")
@click.option("--preview", is_flag=True, help="INVOICE is a preview id.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the lines as CSV.")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the PDF.")
def show_command(config: object, invoice: str, preview: bool, csv_path: Path | None, pdf_path: Path | None,
                 **flags) -> None:  # fmt: skip
    """Print INVOICE (id, number or tenant:number) as a statement; optionally write its CSV and PDF."""
    engine = _engine(config, flags, must_exist=True)
    with reading(engine) as connection:
        invoice_id = int(invoice) if preview and invoice.isdigit() else document.find(connection, invoice)
        view = document.load(connection, invoice_id, preview=preview) if invoice_id is not None else None
    if view is None:
        raise click.ClickException(f"no {'preview' if preview else 'invoice'} {invoice!r}")
    click.echo(document.text(view), nl=False)
    if csv_path:
        csv_path.write_text(document.csv_text(view))
        click.echo(f"wrote {csv_path}", err=True)
    if pdf_path:
        from settlement.billing.pdf import FontMissing, render

        try:
            pdf_path.write_bytes(render(view))
        except FontMissing as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"wrote {pdf_path}", err=True)


@bill.command("einvoice")
@store_options
@click.argument("invoice")
@click.option("--format", "form", type=click.Choice(["ubl", "cii", "facturx"]), default="ubl", show_default=True,
              help="UBL 2.1 XML, CII XML, or the invoice PDF as Factur-X PDF/A-3 with the CII XML embedded.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write.")
@click.option("--credit-note", is_flag=True,
              help="The credit note issued with INVOICE's revision (it credits the revision that one replaced).")
@click.option("--buyer-country", default="", metavar="CC",
              help="The customer's country (ISO 3166) when its VAT id does not say [the seller's].")  # fmt: skip
def einvoice_command(config: object, invoice: str, form: str, output: Path, credit_note: bool, buyer_country: str,
                     **flags) -> None:  # fmt: skip
    """Write INVOICE (id, number or tenant:number) as an EN 16931 e-invoice, validated against its schema."""
    from settlement.billing.einvoice import EInvoiceError
    from settlement.billing.einvoice_store import render as render_einvoice

    engine = _engine(config, flags, must_exist=True)
    with reading(engine) as connection:
        invoice_id = document.find(connection, invoice)
        if invoice_id is None:
            raise click.ClickException(f"no invoice {invoice!r}")
        try:
            content = render_einvoice(connection, invoice_id, form, credit_note=credit_note,  # type: ignore[arg-type]
                                      buyer_country=buyer_country)  # fmt: skip
        except EInvoiceError as error:
            raise click.ClickException(str(error)) from None
    output.write_bytes(content)
    click.echo(f"wrote {output} ({form}, {len(content):,} bytes)")


@bill.group("account")
def account_group() -> None:
    """Accounts' billing settings."""


@account_group.command("set")
@store_options
@click.argument("account")
@click.option("--billing-day", type=click.IntRange(1, 28), help="Day of the month periods start (1-28).")
@click.option("--timezone", help="IANA time zone the billing day is in (Europe/Berlin).")
@click.option("--tax-profile", help="Tax profile of this account (overrides its class's); '' clears it.")
@click.option("--customer-class", help="Customer class (gives the default tax profile); '' clears it.")
@click.option("--customer-code", help="The ERP's customer code [the account id].")
@click.option("--tenant", help="Whose invoice number sequence the account uses [default].")
@click.option("--name", "customer_name", help="The customer's name as invoices print it; '' clears it.")
@click.option(
    "--address",
    "customer_address",
    multiple=True,
    help="An address line of the customer (repeat for each line; replaces them all); '' clears it.",
)
@click.option("--vat-id", "customer_vat_id", help="The customer's VAT id with country prefix (optional); '' clears.")
def account_set(config: object, account: str, **options) -> None:
    """Create or change ACCOUNT's billing settings (only the options given change)."""
    flags = {k: options.pop(k) for k in ("data_dir", "redis_url", "db_url")}
    options["customer_address"] = options["customer_address"] or None  # not given: unchanged
    engine = _engine(config, flags, must_exist=True)
    try:
        with engine.begin() as connection:
            result = set_account(connection, account, **options)
    except (SetupError, NotInBooks) as error:
        raise click.ClickException(str(error)) from None
    r = result
    click.echo(f"{r.account}: day {r.billing_day} {r.timezone}, tenant {r.tenant}, customer {r.customer_code}, "
               f"class {r.customer_class or '-'}, tax {r.tax_profile or '-'}")  # fmt: skip
    details = printable_lines(r.customer)
    click.echo("  bill to: " + (" / ".join(details) if details else "- (no name or address: occ bill account set "
                                                                   f"{r.account} --name … --address …)"))  # fmt: skip


@account_group.command("show")
@store_options
@click.argument("account")
def account_show(config: object, account: str, **flags) -> None:
    """Show ACCOUNT's billing settings (or the defaults it bills with), its tax profile, its open period and the
    online settings settlement recorded for it."""
    engine = _engine(config, flags, must_exist=True)
    try:
        with reading(engine) as connection:
            view = account_view(connection, account)
    except NotInBooks as error:
        raise click.ClickException(str(error)) from None
    for label, value in _account_lines(view):
        click.echo(f"{label + ':':<16} {value}")


def _account_lines(view: AccountView) -> list[tuple[str, str]]:
    b, books, profile = view.billing, view.recorded, view.profile
    settings = "" if view.has_settings else "  (defaults: occ bill account set to change them)"
    if not profile.name:
        tax = "none (untaxed)"
    else:
        tax = f"{profile.name}: {profile.mode} {profile.label()}, from the {view.profile_source}"
    customer = " / ".join(printable_lines(b.customer)) or (
        f"- (no name or address: occ bill account set {b.account} --name … --address …)")  # fmt: skip
    online = "not recorded yet (settled before account entries existed: it appears on the account's next update)"
    if books.plan is not None:
        prepaid = "none" if not books.prepaid_tax_ppm else (
            f"{percent_of_ppm(books.prepaid_tax_ppm)} % (ledger {books.prepaid_tax_ledger}, "
            f"tax code {books.prepaid_tax_code or '-'})")  # fmt: skip
        online = (f"plan {books.plan}, {books.status}, credit limit {format_micros(books.credit_limit or 0)}, "
                  f"prepaid tax {prepaid}")  # fmt: skip
    return [
        ("account", f"{b.account} ({b.currency})"),
        ("billing", f"day {b.billing_day}, {b.timezone}{settings}"),
        ("tenant", b.tenant),
        ("customer", f"{b.customer_code}, class {b.customer_class or '-'}"),
        ("bill to", customer),
        ("tax profile", tax + "".join(f"; problem: {p}" for p in view.problems)),
        ("open period", f"{describe(view.open_start_ms, view.open_end_ms, b.timezone)} ({b.timezone})"),
        ("online", online),
    ]


@bill.group("issuer")
def issuer_group() -> None:
    """The seller printed on a tenant's invoices (name, address, VAT id, registration, bank details)."""


@issuer_group.command("set")
@store_options
@click.option("--tenant", default="default", show_default=True, help="Whose invoices these details are on.")
@click.option("--name", help="Legal name (required the first time).")
@click.option("--address", multiple=True, help="An address line (repeat for each line; replaces them all).")
@click.option("--vat-id", help="VAT id with country prefix, e.g. DE136695976; '' clears it.")
@click.option("--registration-number", help="Company register entry, e.g. 'HRB 12345 B, Amtsgericht Berlin'.")
@click.option("--email", help="Billing contact address.")
@click.option("--bank-name", help="The bank customers pay to.")
@click.option("--iban", help="IBAN customers pay to.")
@click.option("--bic", help="BIC of that bank.")
@click.option("--require-details/--no-require-details", default=None,
              help="Keep invoices to customers without a name or address DRAFT [no].")  # fmt: skip
def issuer_set(config: object, tenant: str, address: tuple[str, ...], require_details: bool | None,
               **options) -> None:  # fmt: skip
    """Create or change the issuer of TENANT's invoices (only the options given change)."""
    flags = {k: options.pop(k) for k in ("data_dir", "redis_url", "db_url")}
    engine = _engine(config, flags)
    try:
        with engine.begin() as connection:
            issuer = set_issuer(connection, tenant, address=address or None, require_details=require_details,
                                **options)  # fmt: skip
    except SetupError as error:
        raise click.ClickException(str(error)) from None
    strict = "required" if issuer.require_details else "not required"
    click.echo(f"issuer of tenant {tenant}: " + " / ".join(printable_lines(issuer.party)))
    if issuer.party.iban:
        click.echo("  pay to: " + ", ".join(bank_lines(issuer.party)))
    click.echo(f"  customer name and address on its invoices: {strict}")


@bill.group("tax-profile")
def tax_profile_group() -> None:
    """Tax profiles."""


@tax_profile_group.command("set")
@store_options
@click.argument("name")
@click.option("--mode", type=click.Choice(MODES), required=True, help="How tax applies.")
@click.option("--rate", "rate_ppm", type=LEGACY_RATE, default="0", show_default=True,
              help="Rate in percent: 20, 19.6 or 20%.")  # fmt: skip
@click.option("--tax-code", required=True, help="VAT group / tax code sent to the ERP (S20, E0…).")
@click.option("--tax-ledger", default="", help="Ledger code tax lines post to (1-15 digits).")
@renamed("--tax-ledger-code", "--tax-ledger")
@click.pass_context
def tax_profile_set(ctx: click.Context, config: object, name: str, mode: str, rate_ppm: int, tax_code: str,
                    tax_ledger: str, **flags) -> None:  # fmt: skip
    """Create or replace tax profile NAME."""
    tax_ledger_code = resolved(ctx, "tax_ledger", tax_ledger)
    engine = _engine(config, flags)
    profile = TaxProfile(name=name, mode=mode, rate_ppm=rate_ppm, tax_code=tax_code, tax_ledger_code=tax_ledger_code)
    try:
        with engine.begin() as connection:
            set_tax_profile(connection, profile)
    except SetupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"tax profile {name}: {mode} {profile.label()}, tax lines to {tax_ledger_code or '-'}")


@bill.group("class")
def class_group() -> None:
    """Customer classes (a default tax profile for their accounts)."""


@class_group.command("set")
@store_options
@click.argument("name")
@click.option("--tax-profile", required=True)
def class_set(config: object, name: str, tax_profile: str, **flags) -> None:
    """Create or change customer class NAME."""
    engine = _engine(config, flags)
    try:
        with engine.begin() as connection:
            set_customer_class(connection, name, tax_profile)
    except SetupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"class {name}: tax profile {tax_profile}")

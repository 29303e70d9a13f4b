"""``occ export`` (send the outbox to the ERP middleware) and ``occ erp-sim`` (a simulated middleware on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import Engine

from occ.cli.billable import billable_items
from occ.cli.erp_options import auth_of, profile_of, url_of
from occ.cli.store_options import load_settings, open_database, store_options
from occ.logs import configure as configure_logs
from occ.settings import Settings
from settlement.billing.journal import JournalOptions, queue_journals, verify_journal
from settlement.billing.posting import on_export_outcome, verify_document
from settlement.export.exporter import Exporter, ExporterOptions, ExportSummary
from settlement.export.profile import ErpProfile
from settlement.export.security import ErpAuth

if TYPE_CHECKING:
    from settlement.export.erp_sim import ErpSim


@click.group(invoke_without_command=True)
@store_options
@click.option("--erp-url", envvar="OCC_ERP_URL",
              help="The middleware's SOAP endpoint, e.g. http://127.0.0.1:8090/soap; also $OCC_ERP_URL "
                   "[erp.url].")  # fmt: skip
@click.option("--once", is_flag=True, help="Send what is due now, then exit (3 if anything was rejected).")
@click.option("--timeout-s", type=click.FloatRange(min=0.001), default=10.0, show_default=True,
              help="The most one SOAP call may take; after it the outcome is unknown and reconciled.")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Documents in flight at once.")  # fmt: skip
@click.option("--backoff-s", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Wait after a first failed attempt; doubles with each further one.")  # fmt: skip
@click.option("--backoff-cap-s", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Longest wait between attempts.")  # fmt: skip
@click.option("--poll-s", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="How often to look for due documents (without --once).")  # fmt: skip
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0, help="Serve Prometheus /metrics here [off].")
@click.option("--erp-username", envvar="OCC_ERP_USERNAME", default="",
              help="OCC's user at the middleware (HTTP basic, or --erp-wsse); also $OCC_ERP_USERNAME.")  # fmt: skip
@click.option("--erp-password", envvar="OCC_ERP_PASSWORD", default="",
              help="Its password; better $OCC_ERP_PASSWORD, which ps does not show.")  # fmt: skip
@click.option("--erp-wsse", "erp_wsse", flag_value="text", default="",
              help="Send the credentials as a WS-Security UsernameToken (PasswordText), not HTTP basic.")  # fmt: skip
@click.option("--erp-wsse-digest", "erp_wsse", flag_value="digest",
              help="The same with PasswordDigest (SHA-1 of nonce, time and password).")  # fmt: skip
@click.option("--erp-cert", envvar="OCC_ERP_CERT", type=click.Path(exists=True, dir_okay=False),
              help="PEM client certificate for the TLS handshake (https); also $OCC_ERP_CERT.")  # fmt: skip
@click.option("--erp-key", envvar="OCC_ERP_KEY", type=click.Path(exists=True, dir_okay=False),
              help="Its private key; also $OCC_ERP_KEY.")  # fmt: skip
@click.option("--erp-ca", envvar="OCC_ERP_CA", type=click.Path(exists=True, dir_okay=False),
              help="PEM CA bundle that signed the middleware's certificate [the system's]; $OCC_ERP_CA.")  # fmt: skip
@click.option("--journals/--no-journals", default=None,
              help="Also queue top-ups, payments, refunds, adjustments and prepaid tax as journal entries and "
                   "incoming payments before each round [erp.journals].")  # fmt: skip
@click.pass_context
def export(ctx: click.Context, config: object, erp_url: str | None, once: bool, timeout_s: float, concurrency: int,
           backoff_s: float, backoff_cap_s: float, poll_s: float, metrics_port: int, erp_username: str,
           erp_password: str, erp_wsse: str, erp_cert: str | None, erp_key: str | None, erp_ca: str | None,
           journals: bool | None, **flags: object) -> None:  # fmt: skip
    """Send the ERP outbox (invoices, credit notes, journal entries, incoming payments) to the finance middleware.

    Over SOAP. Transient faults and timeouts are retried with backoff (a retry first asks the ERP whether it already
    has the document); validation faults and idempotency conflicts are REJECTED. Runs until Ctrl-C or SIGTERM unless
    --once; several exporters may run at once. Exit status 3 when a document was rejected. The [erp] settings give
    the URL, credentials, journals and the ERP profile (series, payment terms, exchange rates, cost centres …);
    flags win over them. `occ export billable-items` writes billable items for SAP Convergent Invoicing instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings(config, **flags)  # type: ignore[arg-type]
    configure_logs(settings.log_level, json=False)
    url = url_of(settings, erp_url)
    try:
        options = ExporterOptions(timeout_s=timeout_s, concurrency=concurrency, backoff_s=backoff_s,
                                  backoff_cap_s=max(backoff_cap_s, backoff_s), poll_s=poll_s)  # fmt: skip
        auth = auth_of(settings, username=erp_username, password=erp_password, wsse=erp_wsse, cert_file=erp_cert,
                       key_file=erp_key, ca_file=erp_ca)  # fmt: skip
        auth.check_url(url)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    queue = settings.erp.journals if journals is None else journals
    engine = open_database(settings)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.host)
    try:
        totals = asyncio.run(_export(engine, url, options, once, auth, profile_of(settings),
                                     _journal_queue(engine, settings) if queue else None))  # fmt: skip
    except ValueError as error:  # a bad --erp-url
        raise click.UsageError(str(error)) from None
    if totals.rejected:
        raise click.exceptions.Exit(3)


export.add_command(billable_items)


def _say(text: str) -> None:
    print(f"export: {text}", file=sys.stderr, flush=True)


def _show(summary: ExportSummary) -> None:
    for outcome in summary.outcomes:
        if outcome.state in ("REJECTED", "VOID", "RETRYING"):
            _say(f"{outcome.idempotency_key} {outcome.state} (attempt {outcome.attempts}): {outcome.error}")


def _summary(totals: ExportSummary) -> str:
    void = f", {totals.void:,} void" if totals.void else ""
    return (f"{totals.sent:,} sent, {totals.accepted:,} accepted, {totals.duplicate:,} duplicate, "
            f"{totals.rejected:,} rejected{void}, {totals.retrying:,} retrying")  # fmt: skip


def _journal_queue(engine: Engine, settings: Settings) -> Callable[[], None]:
    """Queue the journals of the money that moved (before each round), saying what it queued and what it held."""
    options = JournalOptions(batch=settings.erp.journal_batch,  # type: ignore[arg-type]
                             customer_account=settings.erp.customer_account)  # fmt: skip
    held_before: set[str] = set()
    next_s = 0.0

    def queue() -> None:
        nonlocal next_s
        if time.monotonic() < next_s:
            return
        next_s = time.monotonic() + settings.erp.journal_interval_s
        summary = queue_journals(engine, options)
        if summary.documents:
            _say(f"queued {summary.documents:,} journal documents for {summary.rows:,} ledger rows")
        for reason in set(summary.held) - held_before:
            _say(f"not posted: {reason}")
        held_before.update(summary.held)

    return queue


async def _export(engine: Engine, erp_url: str, options: ExporterOptions, once: bool, auth: ErpAuth,
                  profile: ErpProfile, prepare: Callable[[], None] | None) -> ExportSummary:  # fmt: skip
    def progress(summary: ExportSummary) -> None:
        _show(summary)
        if summary.outcomes:
            _say(f"{_summary(exporter.totals)} so far")

    exporter = Exporter(engine, erp_url, options=options, on_run=progress, on_outcome=on_export_outcome,
                        verify=verify_document, auth=auth, profile=profile, prepare=prepare,
                        verify_journal=verify_journal)  # fmt: skip
    backlog = await asyncio.to_thread(exporter.backlog)
    _say(f"{backlog.pending:,} documents pending ({backlog.retrying:,} tried before), {erp_url}")
    if once:
        reporter = asyncio.create_task(_report(exporter))
        try:
            async with exporter:
                totals = await exporter.run_once()
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        _show(totals)
    else:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await exporter.run_until(stop)
        totals = exporter.totals
    left = await asyncio.to_thread(exporter.backlog)
    _say(f"{_summary(totals)}; {left.pending:,} still pending, {left.rejected:,} rejected in the outbox")
    return totals


async def _report(exporter: Exporter, every_s: float = 1.0) -> None:
    """A progress line a second while a long --once run goes on."""
    while True:
        await asyncio.sleep(every_s)
        if exporter.running is not None:
            _say(f"{_summary(exporter.running)} so far")


@click.command("erp-sim")
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True,
              help="Port on 127.0.0.1 (0: any free one).")  # fmt: skip
@click.option("--fail-next", type=click.IntRange(min=0), default=0, help="Answer the next N submissions TRANSIENT.")
@click.option("--stall-s", type=click.FloatRange(min=0), default=0.0, help="Hold stalled submissions this long.")
@click.option("--stall-next", type=click.IntRange(min=0), default=None,
              help="Stall the next N submissions [1 with --stall-s].")  # fmt: skip
@click.option("--drop-next", type=click.IntRange(min=0), default=0,
              help="Store the next N submissions but close the connection without an answer.")  # fmt: skip
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the documents in this JSON file (across restarts).")  # fmt: skip
@click.option("--username", default="", help="The one user accepted (with --require-basic / --require-wsse).")
@click.option("--password", envvar="OCC_ERP_SIM_PASSWORD", default="", help="Its password; also $OCC_ERP_SIM_PASSWORD.")
@click.option("--require-basic", is_flag=True, help="Answer 401 to a request without those credentials (HTTP basic).")
@click.option("--require-wsse", is_flag=True, help="Fault a request without them in a WS-Security UsernameToken.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve https: certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Its private key.")
@click.option("--client-ca", type=click.Path(exists=True, dir_okay=False),
              help="Require client certificates signed by this CA (https).")  # fmt: skip
def erp_sim(port: int, fail_next: int, stall_s: float, stall_next: int | None, drop_next: int,
            store_path: Path | None, username: str, password: str, require_basic: bool, require_wsse: bool,
            tls_cert: str | None, tls_key: str | None, client_ca: str | None) -> None:  # fmt: skip
    """A simulated ERP middleware on 127.0.0.1 for demos and tests (SOAP, validated against the XSD).

    Stores documents, answers DUPLICATE on a replayed idempotency key, and fails, stalls or drops replies on demand;
    change that while it runs with POST /control, e.g. curl -d '{"fail_next": 3}' http://127.0.0.1:8090/control.
    """
    from settlement.export.erp_sim import ErpSim, Injections
    from settlement.export.security import SimSecurity

    stalls = (1 if stall_s else 0) if stall_next is None else stall_next
    injections = Injections(fail_next=fail_next, stall_next=stalls, stall_s=stall_s, drop_next=drop_next)
    try:
        security = SimSecurity(username=username, password=password, require_basic=require_basic,
                               require_wsse=require_wsse, cert_file=tls_cert or "", key_file=tls_key or "",
                               client_ca_file=client_ca or "")  # fmt: skip
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    sim = ErpSim(store_path=store_path, injections=injections, security=security)
    try:
        asyncio.run(_serve_sim(sim, port))
    except OSError as error:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {error.strerror or error}") from None


async def _serve_sim(sim: ErpSim, port: int) -> None:
    url = await sim.start(port)
    base = url.removesuffix("/soap")
    print(f"erp-sim: listening on {url} (WSDL {url}?wsdl, control {base}/control, documents {base}/documents)",
          flush=True)  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await sim.close()
        print(f"erp-sim: stopped; {len(sim.documents):,} documents held", flush=True)

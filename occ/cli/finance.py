"""Checks finance runs on the settlement store: ``occ reconcile``, ``occ xdr …`` and ``occ rerate``.

The work is done in ``settlement.reconcile``, ``settlement.xdr_status`` and ``settlement.rerate``; this module only
parses options, calls them and prints.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy import Engine

from occ.cli.store_options import load_settings, open_database, redis_url, require_accounts, store_options
from occ.cli.tariff import load
from occ.settings import Settings
from occ.store.client import connect
from rating_engine.money import format_micros
from settlement import rerate as rerating
from settlement.dead_letters import DeadLetter, read_dead_letters
from settlement.reconcile import Outcome, Report, reconcile
from settlement.rerate_run import RerateRun
from settlement.store.database import reading
from settlement.vocabulary import XdrStatus
from settlement.xdr_status import StatusError, except_xdr, find, lateness, list_xdrs, restore_xdr

T = TypeVar("T")


@click.command("reconcile")
@store_options
@click.option("--allow-backlog", is_flag=True, help="Compare even if the streams are not drained (expect noise).")
def reconcile_command(config: Path | None, allow_backlog: bool, **flags: object) -> None:
    """Check every account: live balance (Redis) == opening balance + Σ ledger (SQL).

    Exits 0 when every account reconciles, 1 when some do not (listed), 2 when the streams are not drained
    (run `occ settle --once` first) or balances changed during the check.
    """
    settings = load_settings(config, **flags)
    engine = open_database(settings, must_exist=True)
    report = asyncio.run(_reconcile(settings, engine, allow_backlog))
    if not report.checked:
        click.echo(
            f"not drained: {report.backlog.lag:,} entries not yet settled, {report.backlog.pending:,} pending; "
            "run `occ settle --once` first (or --allow-backlog)",
            err=True,
        )
        raise click.exceptions.Exit(Outcome.NOT_DRAINED)
    if report.backlog.lag or report.backlog.pending:
        click.echo(
            f"warning: compared with {report.backlog.lag + report.backlog.pending:,} entries unsettled", err=True
        )
    if report.mismatches:
        click.echo(f"{'account':<24} {'currency':<8} {'live':>18} {'opening + ledger':>18} {'difference':>18}  note")
        for m in report.mismatches:
            live = "-" if m.live_micros is None else format_micros(m.live_micros)
            click.echo(
                f"{m.account:<24} {m.currency:<8} {live:>18} {format_micros(m.expected_micros):>18} "
                f"{format_micros(m.difference_micros):>18}  {m.note}"
            )
    click.echo(f"{report.accounts:,} accounts, {len(report.mismatches):,} mismatches")
    if report.moved and report.mismatches:
        click.echo("the streams moved during the check: these may be changes in flight; settle and run again", err=True)
    raise click.exceptions.Exit(report.outcome)


async def _reconcile(settings: Settings, engine: Engine, allow_backlog: bool) -> Report:
    return await reconcile(
        redis_url(settings), engine, shards=settings.shards, cluster=settings.redis_cluster, allow_backlog=allow_backlog
    )


@click.group()
def xdr() -> None:
    """Look at xDRs and move them in and out of the excepted statuses."""


@xdr.command("except")
@store_options
@click.argument("xdr_id")
@click.option("--reason", required=True, help="Why it must not be billed (recorded with the xDR).")
def except_command(config: Path | None, xdr_id: str, reason: str, **flags: object) -> None:
    """RAW → RAW_EXCEPTED or BILLABLE → BILLABLE_EXCEPTED: the xDR stays off invoices until restored."""
    engine = open_database(load_settings(config, **flags), must_exist=True)
    change = _status(lambda: except_xdr(engine, xdr_id, reason))
    click.echo(f"{change.id}: {change.before} → {change.after} ({change.reason})")


@xdr.command("restore")
@store_options
@click.argument("xdr_id")
@click.option("--reason", required=True, help="Why it may be billed now (recorded with the xDR).")
@click.option("--ledger", "ledger_code", help="Set this ledger code (1-15 digits), e.g. where one was missing.")
def restore_command(config: Path | None, xdr_id: str, reason: str, ledger_code: str | None, **flags: object) -> None:
    """BILLABLE_EXCEPTED → BILLABLE; RAW_EXCEPTED → checked again → BILLABLE, or still RAW_EXCEPTED with why."""
    engine = open_database(load_settings(config, **flags), must_exist=True)
    change = _status(lambda: restore_xdr(engine, xdr_id, reason, ledger_code=ledger_code))
    click.echo(f"{change.id}: {change.before} → {change.after} ({change.reason})")
    if change.after.endswith("EXCEPTED"):
        raise click.exceptions.Exit(1)


@xdr.command("show")
@store_options
@click.argument("xdr_id")
def show_command(config: Path | None, xdr_id: str, **flags: object) -> None:
    """Every field of one xDR."""
    engine = open_database(load_settings(config, **flags), must_exist=True)
    with reading(engine) as connection:
        row = _status(lambda: find(connection, xdr_id))
    for name, value in row._asdict().items():
        text = format_micros(value) if name in ("cost", "tax_amount") and value is not None else value
        click.echo(f"{name + ':':<15} {'' if text is None else text}")
    click.echo(f"{'late:':<15} {lateness(row)}")


@xdr.command("list")
@store_options
@click.option("--status", required=True, type=click.Choice([s.value for s in XdrStatus]), help="Status to list.")
@click.option("--account", metavar="ACCOUNT", help="Only this account.")
@click.option("--period", help="Only this month, YYYY-MM.")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="At most this many.")
def list_command(
    config: Path | None, status: str, account: str | None, period: str | None, limit: int, **flags: object
) -> None:
    """xDRs in one status, oldest first: id, period, account, kind, cost, ledger code, reason."""
    engine = open_database(load_settings(config, **flags), must_exist=True)
    require_accounts(engine, [account])
    rows = list_xdrs(engine, status=status, account=account, period=period, limit=limit)
    for r in rows:
        click.echo(
            f"{r.id:<28} {r.period}  {r.account:<20} {r.kind:<12} {format_micros(r.cost):>14} {r.currency} "
            f"{r.ledger_code:<15} {r.status_reason}"
        )
    click.echo(f"{len(rows):,} xDRs{' (limit reached)' if len(rows) == limit else ''}", err=True)


@xdr.command("dead-letters")
@store_options
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True, help="At most this many.")
def dead_letters_command(config: Path | None, limit: int, **flags: object) -> None:
    """Stream entries settlement could not book (never billed): shard, entry id, type, account, reason."""
    settings = load_settings(config, **flags)

    async def read() -> tuple[list[DeadLetter], int]:
        client = connect(redis_url(settings), cluster=settings.redis_cluster)
        try:
            return await read_dead_letters(client, settings.shards, limit=limit)
        finally:
            await client.aclose()

    letters, total = asyncio.run(read())
    for letter in letters:
        kind, account = letter.fields.get("type", "?"), letter.fields.get("account", "?")
        click.echo(f"s{letter.shard:03d}:{letter.source_id:<22} {kind:<15} {account:<20} {letter.reason}")
    click.echo(f"{total:,} dead letters{f' (showing {len(letters):,})' if total > len(letters) else ''}", err=True)
    if total:
        raise click.exceptions.Exit(1)


def _status(call: Callable[[], T]) -> T:
    try:
        return call()
    except StatusError as error:
        raise click.ClickException(str(error)) from None


@click.command("rerate")
@store_options
@click.option("--from", "from_text", required=True, metavar="DATE", help="First day (UTC) of xDR starts, YYYY-MM-DD.")
@click.option("--to", "to_text", required=True, metavar="DATE", help="Day (UTC) after the last, YYYY-MM-DD.")
@click.option("--account", metavar="ACCOUNT", help="Only this account.")
@click.option("--tariff", "tariff_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Tariff directory to price with.")  # fmt: skip
@click.option("--ledger", "ledger_code", type=click.IntRange(1, 10**15 - 1), default=rerating.DEFAULT_LEDGER,
              show_default=True, help="Ledger code of the balance corrections.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
def rerate_command(
    config: Path | None,
    from_text: str,
    to_text: str,
    account: str | None,
    tariff_dir: Path,
    ledger_code: int,
    dry_run: bool,
    **flags: object,
) -> None:
    """Price BILLABLE and BILLED xDRs again and correct those whose price changed.

    Each changed xDR gets a reversal and a new revision (billed ones put their invoice up for re-issue), and each
    account's balance is corrected by one adjustment through Redis, which `occ settle` then books like any other.
    """
    from_ms, to_ms = _time(from_text, "--from"), _time(to_text, "--to")
    if to_ms <= from_ms:
        raise click.BadParameter(f"must be after --from ({from_text})", param_hint="'--to'")
    settings = load_settings(config, **flags)
    engine = open_database(settings, must_exist=True)
    require_accounts(engine, [account])
    run = RerateRun(engine, load(tariff_dir).compiled, redis_url=partial(redis_url, settings),
                    shards=settings.shards, cluster=settings.redis_cluster)  # fmt: skip
    plan = run.plan(from_ms=from_ms, to_ms=to_ms, account=account, progress=partial(_priced, time.monotonic()))
    _show(plan, dry_run)
    owed = run.owed()
    if dry_run:
        if owed:
            click.echo(
                f"{owed} balance corrections of earlier runs are still owed; a run without --dry-run applies them"
            )
        raise click.exceptions.Exit(1 if plan.failures else 0)
    done = run.correct(plan, ledger_code=ledger_code, progress=_written)
    for failed_account, reason in done.conflicts:
        click.echo(f"account {failed_account} not corrected: {reason}", err=True)
    for a in done.not_applied:
        click.echo(
            f"balance correction {a.key} ({format_micros(a.amount_micros)}) not applied: {a.outcome}; it stays owed",
            err=True,
        )
    click.echo(
        f"rerate {done.run_id}: {len(plan.corrections):,} xDRs corrected on {done.written:,} accounts, "
        f"{len(done.adjustments) - len(done.not_applied):,} balance corrections applied"
    )
    if plan.failures or done.conflicts or done.not_applied:
        raise click.exceptions.Exit(1)


def _priced(started: float, p: rerating.Plan) -> None:
    rate = p.examined / max(time.monotonic() - started, 1e-9)
    print(f"rerate: {p.examined:,} xDRs priced ({rate:,.0f}/s), {len(p.corrections):,} changed", file=sys.stderr,
          flush=True)  # fmt: skip


def _written(done: int, accounts: int) -> None:
    print(f"rerate: {done:,} of {accounts:,} accounts written", file=sys.stderr, flush=True)


def _time(text: str, option: str) -> int:
    try:
        return rerating.parse_time(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=f"'{option}'") from None


def _show(plan: rerating.Plan, dry_run: bool) -> None:
    for xdr_id, reason in plan.failures:
        click.echo(f"cannot price {xdr_id}: {reason}", err=True)
    if plan.corrections:
        click.echo(f"{'xDR':<32} {'account':<20} {'old':>14} {'new':>14} {'difference':>14}")
        for c in plan.corrections:
            click.echo(
                f"{c.original:<32} {c.account:<20} {format_micros(c.old_cost_micros):>14} "
                f"{format_micros(c.new_cost_micros):>14} {format_micros(c.new_cost_micros - c.old_cost_micros):>14}"
            )
        click.echo(f"\n{'account':<20} {'xDRs':>6} {'old':>14} {'new':>14} {'balance change':>16}")
        for name, (old, new, count, currency) in sorted(plan.by_account().items()):
            click.echo(
                f"{name:<20} {count:>6} {format_micros(old):>14} {format_micros(new):>14} "
                f"{format_micros(old - new):>16} {currency}"
            )
    verb = "would change" if dry_run else "change"
    click.echo(
        f"{plan.examined:,} xDRs priced with tariff {plan.tariff_hash[:12]}: {len(plan.corrections):,} {verb}, "
        f"{len(plan.failures):,} could not be priced"
    )

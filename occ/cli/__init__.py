"""The ``occ`` command line: the root group and where each command lives, nothing else.

A command's module is imported only when that command runs (``occ --help`` imports none of them: no gRPC, no
SQLAlchemy), so the summaries ``occ --help`` lists are kept here; ``tests/occ/cli/test_cli_shape.py`` checks that
each one is its command's own first sentence. ``occ --help`` lists the commands in four sections.
"""

from __future__ import annotations

import importlib

import click

from occ import __version__

SECTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "Serving": {
        "serve": ("occ.cli.serve:serve", "Run the online charging gRPC server until Ctrl-C or SIGTERM."),
        "health": ("occ.cli.health:health",
                   "Check that the server at --server is SERVING (gRPC health); exit status 0 if so, 1 if not."),
        "console": ("occ.cli.console:console",
                    "Serve the operator console (a web application) for the server of these settings until Ctrl-C."),
        "settle": ("occ.cli.settle:settle",
                   "Drain the balance-event streams into ledger rows and xDRs in the SQL store."),
        "export": ("occ.cli.export:export",
                   "Send the ERP outbox (invoices, credit notes, journal entries, incoming payments) to the finance "
                   "middleware."),
        "token": ("occ.cli.token:token",
                  "Create, list and revoke the bearer tokens of the Admin API (kept hashed by the server)."),
    },
    "Accounts": {
        "account": ("occ.cli.accounts:account",
                    "Create, list, inspect, block and credit accounts on a running server."),
        "sessions": ("occ.cli.accounts:sessions", "List and abort an account's open sessions on a running server."),
        "call": ("occ.cli.call:call", "Simulate a voice call of ACCOUNT to CALLED lasting --seconds: authorize, start, "
                                      "update per step, end."),
    },
    "Finance": {
        "bill": ("occ.cli.bill:bill",
                 "Invoices: billing runs, out-of-turn and re-issued invoices, previews, settings."),
        "reconcile": ("occ.cli.finance:reconcile_command",
                      "Check every account: live balance (Redis) == opening balance + Σ ledger (SQL)."),
        "xdr": ("occ.cli.finance:xdr", "Look at xDRs and move them in and out of the excepted statuses."),
        "erp-gl": ("occ.cli.erp_gl:erp_gl",
                   "Compare the general ledger of OCC's journals with the ERP's, per G/L account and currency."),
        "rerate": ("occ.cli.finance:rerate_command",
                   "Price BILLABLE and BILLED xDRs again and correct those whose price changed."),
        "outbox": ("occ.cli.outbox:outbox",
                   "The ERP outbox: list and show documents; retry or release a REJECTED one."),
        "report": ("occ.cli.report:report",
                   "Reports for the accountant: the ledger per ledger code and month, tied out to invoices and the "
                   "ERP."),
    },
    "Tools": {
        "tariff": ("occ.cli.tariff:tariff", "Work with tariff directories (CSV files; see docs/tariffs.md)."),
        "rate": ("occ.cli.rate:rate", "Rate a CDR file (CSV) in batches."),
        "demo": ("occ.cli.demo:demo", "Check a tariff and rate a few example calls with it."),
        "db": ("occ.cli.db:db", "The settlement SQL store's schema."),
        "erp-sim": ("occ.cli.export:erp_sim", "A simulated ERP middleware on 127.0.0.1 for demos and tests (SOAP, "
                                              "validated against the XSD)."),
        "bench": ("occ.cli.bench:bench", "Load-test OCC: softswitch simulator, echo and Redis ceilings, correctness, "
                                         "plots (--help for options)."),
    },
}  # fmt: skip
COMMANDS = {name: entry for section in SECTIONS.values() for name, entry in section.items()}


class OccGroup(click.Group):
    """The root group: commands found in :data:`SECTIONS`, imported on first use, listed by section."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attribute = entry[0].split(":")
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; a Redis that cannot be reached (refused, timed out, wrong credentials) is one line on
        stderr and exit status 1 for every command, never a traceback."""
        try:
            return super().invoke(ctx)
        except Exception as error:
            if not type(error).__module__.startswith("redis"):  # (redis is imported only when it was used)
                raise
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError

            if not isinstance(error, RedisConnectionError | RedisTimeoutError):
                raise
            raise click.ClickException(f"Redis cannot be reached: {error}") from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        widest = max(len(name) for name in COMMANDS)
        limit = formatter.width - 6 - widest
        for title, commands in SECTIONS.items():  # names padded alike, so that every section lines up
            rows = [(name.ljust(widest), _shortened(summary, limit)) for name, (_, summary) in commands.items()]
            with formatter.section(title):
                formatter.write_dl(rows)


def _shortened(summary: str, limit: int) -> str:
    """``summary`` cut to ``limit`` characters as click cuts a command's own help."""
    return click.Command(None, help=summary).get_short_help_str(limit)


@click.group(cls=OccGroup)
@click.version_option(__version__, prog_name="occ")
def main() -> None:
    """OCC, the online charging server: check and load tariffs, rate CDR files, manage accounts, try a call, settle,
    bill and export to the ERP, check the books, load-test."""

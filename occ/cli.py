"""The ``occ`` command line: the click group and the registration of its commands, nothing else."""

from __future__ import annotations

import click

from occ import __version__
from occ.admin_cli import account, sessions
from occ.bench_cli import bench
from occ.bill_cli import bill
from occ.call_cli import call
from occ.demo import demo
from occ.export_cli import erp_sim, export
from occ.finance_cli import reconcile_command, rerate_command, xdr
from occ.health_cli import health
from occ.rate_cli import rate
from occ.serve_cli import serve
from occ.settle_cli import db, settle
from occ.tariff_cli import tariff


@click.group()
@click.version_option(__version__, prog_name="occ")
def main() -> None:
    """OCC, the online charging server: check and load tariffs, rate CDR files, manage accounts, try a call, settle,
    bill and export to the ERP, check the books, load-test."""


main.add_command(tariff)
main.add_command(rate)
main.add_command(demo)
main.add_command(serve)
main.add_command(health)
main.add_command(account)
main.add_command(sessions)
main.add_command(call)
main.add_command(settle)
main.add_command(db)
main.add_command(reconcile_command)
main.add_command(xdr)
main.add_command(rerate_command)
main.add_command(bill)
main.add_command(export)
main.add_command(erp_sim)
main.add_command(bench)

"""The ``occ`` command line: the click group and the registration of its commands, nothing else."""

from __future__ import annotations

import click

from occ import __version__
from occ.cli.accounts import account, sessions
from occ.cli.bench import bench
from occ.cli.bill import bill
from occ.cli.call import call
from occ.cli.demo import demo
from occ.cli.export import erp_sim, export
from occ.cli.finance import reconcile_command, rerate_command, xdr
from occ.cli.rate import rate
from occ.cli.serve import serve
from occ.cli.settle import db, settle
from occ.cli.tariff import tariff


@click.group()
@click.version_option(__version__, prog_name="occ")
def main() -> None:
    """OCC, the online charging server: check and load tariffs, rate CDR files, manage accounts, try a call, settle,
    bill and export to the ERP, check the books, load-test."""


main.add_command(tariff)
main.add_command(rate)
main.add_command(demo)
main.add_command(serve)
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

"""The shape of the ``occ`` command line: sections in ``occ --help``, commands loaded lazily, one metavar for an
account, one percent type, and old spellings that still work for a release with a warning on stderr."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from occ.cli import COMMANDS, SECTIONS, main
from occ.cli.types import LEGACY_RATE, PERCENT
from settlement.store.database import open_store
from settlement.store.schema import tax_profiles

HEAVY = ("grpc", "sqlalchemy", "numpy", "redis", "settlement", "occ.cli.accounts", "occ.cli.bill", "occ.cli.serve")


def test_help_lists_every_command_once_in_four_sections():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert [title for title in SECTIONS] == ["Serving", "Accounts", "Finance", "Tools"]
    for title in SECTIONS:
        assert f"\n{title}:\n" in result.output
    listed = [line.split()[0] for line in result.output.splitlines() if line.startswith("  ") and line.split()]
    assert sorted(name for name in listed if name in COMMANDS) == sorted(COMMANDS)


def test_help_imports_no_command_module():
    probe = (
        "import sys\nfrom occ.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_summary_is_its_commands_own_first_sentence(name):
    command = main.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None and command.name == name
    assert command.get_short_help_str(1000) == COMMANDS[name][1]


@pytest.mark.parametrize(
    "args",
    [("account", "create"), ("account", "update"), ("account", "show"), ("account", "block"), ("account", "unblock"),
     ("account", "topup"), ("account", "payment"), ("account", "refund"), ("account", "adjust"),
     ("sessions", "list"), ("sessions", "abort"), ("call",), ("bill", "now"), ("bill", "account", "set")],
)  # fmt: skip
def test_an_account_is_always_spelled_ACCOUNT(args):
    usage = CliRunner().invoke(main, [*args, "--help"]).output.splitlines()[0]
    assert "ACCOUNT" in usage and " ID" not in usage


@pytest.mark.parametrize("args", [("xdr", "list"), ("rerate",), ("bill", "run")])
def test_an_account_option_shows_ACCOUNT(args):
    assert "--account ACCOUNT" in CliRunner().invoke(main, [*args, "--help"]).output


@pytest.mark.parametrize(("text", "ppm"), [("20", 200_000), ("20%", 200_000), ("0.2", 2_000), ("19.6", 196_000)])
def test_a_number_is_always_percent(text, ppm):
    assert PERCENT.convert(text, None, None) == ppm


def _tax_profile(tmp_path, *options: str):
    url = f"sqlite:///{tmp_path / 'occ.sqlite3'}"
    args = ["bill", "tax-profile", "set", "VAT", "--mode", "EXCLUSIVE", "--tax-code", "S", *options, "--db-url", url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    engine = open_store(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(select(tax_profiles.c.rate_ppm, tax_profiles.c.tax_ledger_code)).one()
    finally:
        engine.dispose()
    return tuple(row), result.stderr


def test_tax_profile_rate_is_percent_and_its_ledger_is_tax_ledger(tmp_path):
    stored, stderr = _tax_profile(tmp_path, "--rate", "20", "--tax-ledger", "470000001")
    assert stored == (200_000, "470000001") and stderr == ""


@pytest.mark.parametrize(
    ("options", "stored", "warned"),
    [(("--rate", "0.2", "--tax-ledger", "4700"), (200_000, "4700"), "'0.2' as a fraction is deprecated"),
     (("--rate", "19.6 %", "--tax-ledger", "4700"), (196_000, "4700"), "'19.6 %' (a space before %) is deprecated"),
     (("--rate", "20%", "--tax-ledger-code", "4700"), (200_000, "4700"), "--tax-ledger-code is deprecated")],
)  # fmt: skip
def test_old_spellings_still_work_for_a_release_with_a_warning(tmp_path, options, stored, warned):
    got, stderr = _tax_profile(tmp_path, *options)
    assert got == stored
    assert warned in stderr and "next release" in stderr


def test_the_legacy_rate_reads_only_bare_fractions_below_one_as_fractions():
    assert LEGACY_RATE.convert("0.07", None, None) == 70_000
    assert LEGACY_RATE.convert("1", None, None) == 10_000  # 1 %: "1" as 100 % was never a real rate
    assert LEGACY_RATE.convert("0.2%", None, None) == 2_000  # with % it is percent: 0.2 %

"""``occ account``, ``occ sessions``, ``occ tariff load`` and ``occ call`` against a real server.

The commands find the Admin API in $OCC_ADMIN_SERVER with the token in $OCC_TOKEN, as an operator would set them.

The server runs in the test's event loop (the ``charging`` App, served on a port of our own); each command runs in
a worker thread with click's CliRunner, as it would in a shell, and talks to the server with the sync stubs.
Call figures from examples/tariff at Monday 09:00 UTC (PEAK → STANDARD): cost(30) = cost(60) = 0.300000,
cost(90) = 0.325000, cost(120) = 0.350000, cost(150) = 0.375000.
"""

from __future__ import annotations

import asyncio
import shutil

import grpc
import pytest
from click.testing import CliRunner, Result
from online_app import EXAMPLE_TARIFF, LONDON, session, voice

from occ.api.auth import AdminAuthInterceptor
from occ.cli import main
from occ.v1 import admin_pb2 as admin

PEAK = "2026-01-05T09:00:00Z"


@pytest.fixture
async def occ(charging):
    """Run ``occ ARGS…`` against the fixture's App (Charging and the authenticated Admin on one port, the token of
    role admin in $OCC_TOKEN); returns the click Result."""
    guard = AdminAuthInterceptor.from_settings(charging.app.settings)
    server = grpc.aio.server(interceptors=[guard])
    charging.app.add_to_server(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    async def run(*args: str) -> Result:
        address = f"127.0.0.1:{port}"
        env = {"OCC_SERVER": address, "OCC_ADMIN_SERVER": address, "OCC_TOKEN": charging.token}
        result = await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    yield run
    await server.stop(0)
    guard.close()


def fields(result: Result) -> dict[str, str]:
    """``label: value`` lines of a command's output."""
    pairs = (line.partition(":") for line in result.stdout.splitlines())
    return {label.strip(): value.strip() for label, _, value in pairs}


async def test_account_create_show_and_money_movements(occ, charging):
    created = await occ("account", "create", "cli-1", "--plan", "retail", "--credit-limit", "5")
    assert created.exit_code == 0, created.output
    shown = fields(created)
    assert (shown["account"], shown["status"], shown["plan"], shown["currency"]) == ("cli-1", "ACTIVE", "retail", "EUR")
    assert (shown["balance"], shown["credit limit"], shown["available"]) == ("0.000000", "5.000000", "5.000000")

    topup = await occ("account", "topup", "cli-1", "10.50", "--ledger", "400000009", "--key", "t-1")
    assert topup.exit_code == 0, topup.output
    assert (fields(topup)["balance"], fields(topup)["idempotency key"]) == ("10.500000", "t-1")
    assert (await occ("account", "payment", "cli-1", "2", "--ledger", "110000001")).exit_code == 0
    adjust = await occ("account", "adjust", "cli-1", "-1.25", "--ledger", "400000001", "--key", "fix-1")
    assert (adjust.exit_code, fields(adjust)["balance"]) == (0, "11.250000")
    refund = await occ("account", "refund", "cli-1", "0.25", "--ledger", "400000009", "--description", "goodwill")
    assert (refund.exit_code, fields(refund)["balance"]) == (0, "11.000000")
    assert (await charging.balance("cli-1")).balance_micros == 11_000_000

    events = await charging.events("cli-1")
    assert [(e["type"], e["amount"], e["ledger"]) for e in events] == [
        ("topup", "10500000", "400000009"),
        ("payment", "2000000", "110000001"),
        ("adjustment", "-1250000", "400000001"),
        ("refund", "-250000", "400000009"),
    ]
    assert events[-1]["description"] == "goodwill"
    assert len({e["idempotency_key"] for e in events}) == 4  # a fresh uuid4 key where none was given

    shown = fields(await occ("account", "show", "cli-1"))
    assert (shown["balance"], shown["available"], shown["open sessions"]) == ("11.000000", "16.000000", "0")
    # Issue 10: "tax profile: (none)" after `occ bill account set cli-1 --tax-profile VAT20` was one account with two
    # truths; billing settings live in the SQL store, and the online account says where to see them.
    assert "tax profile" not in shown and "tax label" not in shown
    assert shown["billing"] == "settings in the SQL store: occ bill account show cli-1"


async def test_an_online_tax_profile_is_shown_as_the_label_it_is(occ):
    created = await occ("account", "create", "cli-label", "--plan", "retail", "--tax-profile", "VAT20")
    assert created.exit_code == 0, created.output
    assert fields(created)["tax label"] == "VAT20 (online only; billing does not read it)"
    assert "billing does not read it" in " ".join((await occ("account", "create", "--help")).stdout.split())


async def test_a_repeated_key_is_reported_as_a_duplicate(occ, charging):
    await charging.account("cli-2", balance=0)
    first = await occ("account", "topup", "cli-2", "5", "--ledger", "400000009", "--key", "once")
    again = await occ("account", "topup", "cli-2", "5", "--ledger", "400000009", "--key", "once")
    assert fields(again)["transaction"] == fields(first)["transaction"]
    assert "duplicate" in again.stdout and "duplicate" not in first.stdout
    assert (await charging.balance("cli-2")).balance_micros == 5_000_000
    conflict = await occ("account", "topup", "cli-2", "6", "--ledger", "400000009", "--key", "once")
    assert conflict.exit_code == 1
    assert conflict.stderr.startswith("error: FAILED_PRECONDITION: idempotency_key: ")


async def test_block_and_unblock(occ, charging):
    await charging.account("cli-3", balance=1_000_000)
    blocked = await occ("account", "block", "cli-3")
    assert (blocked.exit_code, fields(blocked)["status"]) == (0, "BLOCKED")
    start = await charging.charging.StartSession(session("b-1", 0, "cli-3", voice(60)))
    assert start.result_code == 4010
    assert fields(await occ("account", "unblock", "cli-3"))["status"] == "ACTIVE"
    assert (await charging.charging.StartSession(session("b-2", 0, "cli-3", voice(60)))).result_code == 2001


async def test_grpc_errors_go_to_stderr_with_exit_status_1(occ):
    missing = await occ("account", "show", "ghost")
    assert (missing.exit_code, missing.stdout) == (1, "")
    assert missing.stderr == "error: NOT_FOUND: id: no account 'ghost'\n"
    bad_plan = await occ("account", "create", "cli-4", "--plan", "gold")
    assert bad_plan.exit_code == 1 and bad_plan.stderr.startswith("error: INVALID_ARGUMENT: tariff_plan: ")
    unreachable = await occ("account", "show", "x", "--admin-server", "127.0.0.1:1")
    assert unreachable.exit_code == 1 and unreachable.stderr.startswith("error: UNAVAILABLE: ")


@pytest.mark.parametrize("command", ["topup", "payment", "refund"])
async def test_a_negative_amount_gets_the_amounts_own_error_and_moves_nothing(occ, charging, command):
    await charging.account("neg", balance=1_000_000)
    for amount in ("-5", "-0.000001", "0"):
        result = await occ("account", command, "neg", amount, "--ledger", "400000009")
        assert result.exit_code == 2, result.output
        assert "No such option" not in result.stderr  # issue 10: click took '-5' for an option
        assert f"Invalid value for 'AMOUNT': '{amount}' must be positive" in result.stderr
    assert (await charging.balance("neg")).balance_micros == 1_000_000
    assert [e["type"] for e in await charging.events("neg")] == ["topup"]  # the opening top-up only
    wrong_option = await occ("account", command, "neg", "5", "--ledger", "400000009", "--bogus")
    assert wrong_option.exit_code == 2 and "--bogus" in wrong_option.stderr
    signed = await occ("account", "adjust", "neg", "-0.25", "--ledger", "400000001", "--key", "fix")
    assert (signed.exit_code, fields(signed)["balance"]) == (0, "0.750000")  # adjust keeps its sign


async def test_an_amount_with_more_than_six_decimals_is_a_usage_error(occ):
    result = await occ("account", "topup", "x", "1.0000001", "--ledger", "1")
    assert result.exit_code == 2 and "at most 6 decimals" in result.stderr


async def test_sessions_list_and_abort(occ, charging):
    await charging.account("cli-5", balance=10_000_000)
    assert (await occ("sessions", "list", "cli-5")).stdout == "no open sessions on cli-5\n"
    await charging.charging.StartSession(session("sess-1", 0, "cli-5", voice(60)))
    listed = await occ("sessions", "list", "cli-5")
    header, row = listed.stdout.splitlines()
    assert header.split()[:5] == ["session", "request", "reserved", "cost", "called"]
    assert row.split()[:5] == ["sess-1", "0", "0.300000", "0.000000", LONDON]

    aborted = await occ("sessions", "abort", "cli-5", "sess-1", "--reason", "maintenance")
    assert (aborted.exit_code, aborted.stdout) == (0, "aborted sess-1: cost 0.000000\n")
    assert (await charging.balance("cli-5")).reserved_micros == 0
    again = await occ("sessions", "abort", "cli-5", "sess-1")
    assert again.exit_code == 0 and "nothing to abort" in again.stdout


async def test_tariff_load_uploads_the_directory(occ, charging, tmp_path):
    dearer = tmp_path / "dearer"
    shutil.copytree(EXAMPLE_TARIFF, dearer)
    intervals = dearer / "rate_intervals.csv"
    intervals.write_text(intervals.read_text().replace("MOBILE,0,0.12,60,1", "MOBILE,0,0.24,60,1"))
    loaded = await occ("tariff", "load", str(dearer))
    assert loaded.exit_code == 0, loaded.output
    shown = fields(loaded)
    assert (shown["changed"], shown["prefixes"], shown["rates"]) == ("yes", "11", "8")
    assert shown["plans"] == "retail, wholesale"
    assert shown["tariff hash"] == charging.app.tariffs.current.hash
    assert fields(await occ("tariff", "load", str(dearer)))["changed"].startswith("no")

    missing = await occ("tariff", "load", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "is not a directory here" in missing.stderr
    outside = await occ("tariff", "load", "--on-server", str(dearer))  # the server's root is <data dir>/tariffs
    assert outside.exit_code == 1 and outside.stderr.startswith("error: INVALID_ARGUMENT: directory: is not a tariff ")


async def test_call_runs_a_whole_call_flow(occ, charging):
    await charging.account("caller", balance=10_000_000)
    result = await occ("call", "caller", LONDON, "--seconds", "150", "--at", PEAK)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["authorize", "SUCCESS", "up", "to"]
    assert [line.split()[0] for line in lines[1:-1]] == ["start", "update", "update", "update", "update", "end"]
    costs = [line.split("cost ")[1].split()[0] for line in lines[1:-1]]
    assert costs == ["0.000000", "0.300000", "0.300000", "0.325000", "0.350000", "0.375000"]
    assert lines[-2].endswith("balance 9.625000 EUR") and lines[-1] == "call of 150 s ended"
    assert (await charging.balance("caller")).balance_micros == 9_625_000
    assert not (await charging.admin.ListSessions(admin.ListSessionsRequest(account_id="caller"))).sessions


async def test_call_in_real_time_keeps_its_session_open_while_it_talks(occ, charging):
    await charging.account("talker", balance=10_000_000)
    running = asyncio.create_task(occ("call", "talker", LONDON, "--seconds", "3", "--step", "1", "--real-time"))
    listed = admin.ListSessionsRequest(account_id="talker")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not (await charging.admin.ListSessions(listed)).sessions:  # open once the start is granted
        assert not running.done() and loop.time() < deadline, "the call's session never showed"
        await asyncio.sleep(0.05)
    opened = loop.time()
    result = await running
    assert result.exit_code == 0, result.output
    assert loop.time() - opened >= 1.5  # it talked through 2 more stretches of 1 s before ending
    assert [line.split()[0] for line in result.stdout.splitlines()[1:-1]] == ["start", "update", "update", "end"]
    assert not (await charging.admin.ListSessions(listed)).sessions


async def test_call_is_cut_off_when_the_credit_runs_out(occ, charging):
    await charging.account("short", balance=350_000)
    result = await occ("call", "short", LONDON, "--seconds", "300", "--at", PEAK)
    assert result.exit_code == 0, result.output
    assert "up to 120 s for 0.350000 EUR (UK_FIXED)" in result.stdout
    assert "CREDIT_LIMIT_REACHED" in result.stdout
    assert result.stdout.splitlines()[-1] == "call of 120 s (cut off: the caller wanted 300 s) ended"
    balance = await charging.balance("short")
    assert (balance.balance_micros, balance.reserved_micros) == (0, 0)


async def test_call_is_refused_without_credit(occ, charging):
    await charging.account("broke", balance=0)
    result = await occ("call", "broke", LONDON, "--seconds", "60", "--at", PEAK)
    assert result.exit_code == 1 and "CREDIT_LIMIT_REACHED" in result.stdout
    assert "call refused" in result.stderr
    assert await charging.events("broke") == []


async def test_call_of_an_unknown_account_prints_no_cost_line(occ):
    result = await occ("call", "bob", LONDON, "--seconds", "60", "--at", PEAK)
    assert result.exit_code == 1
    assert result.stdout.split() == ["authorize", "USER_UNKNOWN"]  # issue 10: no "for 0.000000 " without currency
    assert result.stderr == "Error: call refused: no account with this subscriber id\n"


async def test_account_prepaid_tax_create_update_and_a_taxed_topup(occ, charging):
    created = await occ("account", "create", "cli-tax", "--plan", "retail", "--prepaid-tax-rate", "20",
                        "--prepaid-tax-ledger", "470000001", "--prepaid-tax-code", "S20")  # fmt: skip
    assert created.exit_code == 0, created.output
    assert fields(created)["prepaid tax"] == "20 % taken from top-ups (ledger 470000001, tax code S20)"
    topup = await occ("account", "topup", "cli-tax", "10", "--ledger", "400000009", "--key", "t-1")
    assert (fields(topup)["balance"], fields(topup)["prepaid tax"], fields(topup)["credited"]) == (
        "8.333333", "1.666667", "8.333333")  # fmt: skip

    updated = await occ("account", "update", "cli-tax", "--prepaid-tax-rate", "5.5", "--prepaid-tax-ledger", "9")
    assert updated.exit_code == 0, updated.output
    assert fields(updated)["prepaid tax"] == "5.5 % taken from top-ups (ledger 9)"
    missing = await occ("account", "update", "cli-tax", "--prepaid-tax-rate", "5")
    assert missing.exit_code == 1 and "prepaid_tax.ledger_code" in missing.output
    off = await occ("account", "update", "cli-tax", "--prepaid-tax-rate", "0")
    assert fields(off)["prepaid tax"] == "(none)"
    assert (await charging.admin.GetAccount(admin.GetAccountRequest(id="cli-tax"))).prepaid_tax.rate_ppm == 0


async def test_account_list_pages_through_accounts_with_a_prefix(occ, charging):
    for account_id in ("list-a", "list-b", "list-c", "zz"):
        await charging.account(account_id, balance=1_500_000)
    first = await occ("account", "list", "--prefix", "list-", "--page-size", "2")
    assert first.exit_code == 0, first.output
    assert "list-a" in first.output and "list-b" in first.output and "list-c" not in first.output
    assert "1.500000" in first.output and "more: --page-token list-b" in first.output
    rest = await occ("account", "list", "--prefix", "list-", "--page-size", "2", "--page-token", "list-b")
    assert "list-c" in rest.output and "more:" not in rest.output
    every = await occ("account", "list", "--all", "--page-size", "1")
    assert [line.split()[0] for line in every.output.splitlines()[1:]] == ["list-a", "list-b", "list-c", "zz"]
    assert "no accounts starting with 'nope'" in (await occ("account", "list", "--prefix", "nope")).output

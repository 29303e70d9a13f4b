"""``occ.v1.Admin``: accounts, money movements with idempotency keys, open sessions and tariff loads."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import grpc
import pytest
from online_app import EXAMPLE_TARIFF, LONDON, MONDAY_PEAK, session, voice

from occ.store import keys
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

MOBILE = "+447700900123"


async def rejected(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    assert failure.value.code() == code, failure.value.details()
    return failure.value.details()


async def test_create_then_get_round_trips_every_field(charging):
    request = admin.Account(
        id="acme", currency="EUR", credit_limit_micros=5_000_000, tariff_plan="wholesale", tax_profile="UK-VAT"
    )
    created = await charging.admin.CreateAccount(request)
    fetched = await charging.admin.GetAccount(admin.GetAccountRequest(id="acme"))
    assert created == fetched
    assert (fetched.id, fetched.currency, fetched.tariff_plan, fetched.tax_profile) == (
        "acme",
        "EUR",
        "wholesale",
        "UK-VAT",
    )
    assert (fetched.status, fetched.credit_limit_micros) == (admin.ACTIVE, 5_000_000)
    assert (fetched.balance_micros, fetched.reserved_micros, fetched.available_micros) == (0, 0, 5_000_000)
    assert fetched.open_sessions == 0


async def test_a_duplicate_create_is_already_exists_and_changes_nothing(charging):
    await charging.admin.CreateAccount(admin.Account(id="dup", currency="EUR", tariff_plan="retail"))
    again = charging.admin.CreateAccount(admin.Account(id="dup", currency="EUR", tariff_plan="wholesale"))
    assert "dup" in await rejected(again, grpc.StatusCode.ALREADY_EXISTS)
    assert (await charging.admin.GetAccount(admin.GetAccountRequest(id="dup"))).tariff_plan == "retail"


@pytest.mark.parametrize(
    ("account", "field"),
    [
        (admin.Account(id="x", currency="EUR", tariff_plan="gold"), "tariff_plan"),
        (admin.Account(id="x", currency="EUR"), "tariff_plan"),
        (admin.Account(id="x", currency="eur", tariff_plan="retail"), "currency"),
        (admin.Account(id="x", currency="USD", tariff_plan="retail"), "currency"),
        (admin.Account(id="x", tariff_plan="retail"), "currency"),
        (admin.Account(id="", currency="EUR", tariff_plan="retail"), "id"),
        (admin.Account(id="x", currency="EUR", tariff_plan="retail", credit_limit_micros=-1), "credit_limit_micros"),
    ],
)
async def test_a_bad_account_is_invalid_argument_naming_the_field(charging, account, field):
    details = await rejected(charging.admin.CreateAccount(account), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(f"{field}: "), details
    await rejected(charging.admin.GetAccount(admin.GetAccountRequest(id="x")), grpc.StatusCode.NOT_FOUND)


async def test_transactions_move_the_balance_by_their_signed_amount_with_one_event_each(charging):
    await charging.admin.CreateAccount(admin.Account(id="money", currency="EUR", tariff_plan="retail"))
    movements = [  # (type, amount, ledger code, event type, balance change)
        (admin.TOP_UP, 10_000_000, 400000009, "topup", 10_000_000),
        (admin.PAYMENT, 2_500_000, 110000001, "payment", 2_500_000),
        (admin.ADJUSTMENT, -1_250_000, 400000001, "adjustment", -1_250_000),
        (admin.ADJUSTMENT, 40_000, 400000001, "adjustment", 40_000),
        (admin.REFUND, 750_000, 400000009, "refund", -750_000),
    ]
    balance = 0
    for number, (kind, amount, ledger, _, change) in enumerate(movements):
        answer = await charging.admin.Transact(
            admin.TransactionRequest(
                account_id="money",
                type=kind,
                amount_micros=amount,
                idempotency_key=f"k{number}",
                ledger_code=ledger,
                description=f"movement {number}",
            )
        )
        balance += change
        assert (answer.balance_micros, answer.duplicate) == (balance, False) and answer.transaction_id
    assert balance == 10_540_000
    assert (await charging.balance("money")).balance_micros == balance

    events = await charging.events("money")
    assert [(e["type"], int(e["amount"]), int(e["ledger"])) for e in events] == [
        (event_type, change, ledger) for _, _, ledger, event_type, change in movements
    ]
    assert [e["idempotency_key"] for e in events] == ["k0", "k1", "k2", "k3", "k4"]
    assert events[2]["description"] == "movement 2" and events[-1]["balance"] == str(balance)


async def test_a_repeated_idempotency_key_changes_nothing(charging):
    await charging.admin.CreateAccount(admin.Account(id="idem", currency="EUR", tariff_plan="retail"))
    request = admin.TransactionRequest(
        account_id="idem", type=admin.TOP_UP, amount_micros=5_000_000, idempotency_key="pay-42", ledger_code=400000009
    )
    first = await charging.admin.Transact(request)
    again = await charging.admin.Transact(request)
    assert (again.duplicate, again.transaction_id, again.balance_micros) == (True, first.transaction_id, 5_000_000)
    assert (await charging.balance("idem")).balance_micros == 5_000_000
    assert len(await charging.events("idem")) == 1

    request.amount_micros = 6_000_000
    details = await rejected(charging.admin.Transact(request), grpc.StatusCode.FAILED_PRECONDITION)
    assert details.startswith("idempotency_key: ")
    assert (await charging.balance("idem")).balance_micros == 5_000_000


@pytest.mark.parametrize(
    ("kind", "amount", "key", "ledger", "field"),
    [
        (admin.TOP_UP, -1, "k", 1, "amount_micros"),
        (admin.REFUND, -750_000, "k", 1, "amount_micros"),
        (admin.ADJUSTMENT, 0, "k", 1, "amount_micros"),
        (admin.TOP_UP, 1, "", 1, "idempotency_key"),
        (admin.TOP_UP, 1, "k", 0, "ledger_code"),
        (admin.TRANSACTION_TYPE_UNSPECIFIED, 1, "k", 1, "type"),
    ],
)
async def test_a_bad_transaction_is_invalid_argument(charging, kind, amount, key, ledger, field):
    await charging.admin.CreateAccount(admin.Account(id="t", currency="EUR", tariff_plan="retail"))
    request = admin.TransactionRequest(
        account_id="t", type=kind, amount_micros=amount, idempotency_key=key, ledger_code=ledger
    )
    assert (await rejected(charging.admin.Transact(request), grpc.StatusCode.INVALID_ARGUMENT)).startswith(field)
    assert await charging.events("t") == []


async def test_a_transaction_on_an_unknown_account_is_not_found(charging):
    request = admin.TransactionRequest(
        account_id="nobody", type=admin.TOP_UP, amount_micros=1, idempotency_key="k", ledger_code=1
    )
    await rejected(charging.admin.Transact(request), grpc.StatusCode.NOT_FOUND)


async def test_list_sessions_shows_each_open_session_with_its_hold_and_deadline(charging):
    await charging.account("ls", balance=10_000_000)
    before_ms = int(time.time() * 1000)
    await charging.charging.StartSession(session("ls-1", 0, "ls", voice(60)))
    after_ms = int(time.time() * 1000)

    [info] = (await charging.admin.ListSessions(admin.ListSessionsRequest(account_id="ls"))).sessions
    assert (info.session_id, info.account_id, info.last_request_number) == ("ls-1", "ls", 0)
    assert (info.reserved_micros, info.cost_micros, info.called_party) == (300_000, 0, LONDON)
    assert before_ms <= info.started_unix_ms <= after_ms
    assert info.deadline_unix_ms == info.started_unix_ms + 2 * 60 * 1000  # 2 × validity time
    assert (await charging.admin.GetAccount(admin.GetAccountRequest(id="ls"))).open_sessions == 1

    await charging.charging.UpdateSession(session("ls-1", 1, "ls", voice(60, used=61)))
    [info] = (await charging.admin.ListSessions(admin.ListSessionsRequest(account_id="ls"))).sessions
    assert (info.last_request_number, info.reserved_micros, info.cost_micros) == (1, 50_000, 300_834)
    assert info.deadline_unix_ms >= after_ms + 120_000

    await charging.charging.EndSession(session("ls-1", 2, "ls", voice(used=10)))
    assert not (await charging.admin.ListSessions(admin.ListSessionsRequest(account_id="ls"))).sessions


def tariff_copy(tmp_path: Path, name: str = "tariff") -> Path:
    directory = tmp_path / name
    shutil.copytree(EXAMPLE_TARIFF, directory)
    return directory


async def test_load_tariff_publishes_a_changed_tariff_once(charging):
    original = charging.app.tariffs.current.hash
    directory = tariff_copy(charging.app.settings.data_dir)
    intervals = directory / "rate_intervals.csv"
    intervals.write_text(intervals.read_text().replace("MOBILE,0,0.12,60,1", "MOBILE,0,0.24,60,1"))

    loaded = await charging.admin.LoadTariff(admin.LoadTariffRequest(directory=str(directory)))
    assert loaded.changed and loaded.tariff_hash != original
    assert (loaded.prefixes, loaded.rates, list(loaded.plans)) == (11, 8, ["retail", "wholesale"])
    assert charging.app.tariffs.current.hash == loaded.tariff_hash

    await charging.account("mob", balance=10_000_000)
    request = pb.AuthorizeRequest(subscriber="mob", service=pb.VOICE, called_party=MOBILE, max_units=60)
    request.event_time.seconds = MONDAY_PEAK
    assert (await charging.charging.Authorize(request)).cost_micros == 290_000  # 0.05 + 0.24 (was 0.17)

    again = await charging.admin.LoadTariff(admin.LoadTariffRequest(directory=str(directory)))
    assert (again.changed, again.tariff_hash) == (False, loaded.tariff_hash)
    back = await charging.admin.LoadTariff(admin.LoadTariffRequest(directory=EXAMPLE_TARIFF))
    assert (back.changed, back.tariff_hash) == (True, original)


async def test_a_broken_tariff_is_invalid_argument_listing_file_and_line(charging):
    original = charging.app.tariffs.current.hash
    directory = tariff_copy(charging.app.settings.data_dir, "broken")
    groups = directory / "groups.csv"
    groups.write_text(groups.read_text().replace("EU,400000002", "EU,4000-02"))
    (directory / "destinations.csv").write_text("prefix,group\n44,UK_FIXED\n4x7,UK_MOBILE\n")

    request = admin.LoadTariffRequest(directory=str(directory))
    details = await rejected(charging.admin.LoadTariff(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith("directory: ")
    assert "groups.csv:5 [ledger_code]" in details and "destinations.csv:3 [prefix]" in details
    assert charging.app.tariffs.current.hash == original
    assert (await charging.app.redis.get(keys.TARIFF_CURRENT)).decode() == original


async def test_load_tariff_of_a_missing_directory_is_not_found(charging, tmp_path):
    request = admin.LoadTariffRequest(directory=str(tmp_path / "nowhere"))
    assert "nowhere" in await rejected(charging.admin.LoadTariff(request), grpc.StatusCode.NOT_FOUND)
    empty = admin.LoadTariffRequest()
    assert (await rejected(charging.admin.LoadTariff(empty), grpc.StatusCode.INVALID_ARGUMENT)).startswith("directory")


async def test_idempotency_keys_of_rerate_corrections_are_reserved(charging):
    await charging.account("acme", balance=0)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await charging.admin.Transact(
            admin.TransactionRequest(
                account_id="acme",
                type=admin.ADJUSTMENT,
                amount_micros=5,
                idempotency_key="rerate:run-1:acme",
                ledger_code=400000010,
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "idempotency_key" in refused.value.details() and "rerate:" in refused.value.details()
    assert (await charging.balance("acme")).balance_micros == 0

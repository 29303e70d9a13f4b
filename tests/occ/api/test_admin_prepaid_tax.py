"""Prepaid tax at top-up (issue 5): a TOP_UP of G on an account with a prepaid tax rate r credits G − T, where
T = G × r / (1 + r) rounded half up to the micro-unit, and its stream entry says so (``docs/events.md``).

By hand: 10.00 at 20 % → T = 10 × 0.2 / 1.2 = 1.6666666… → 1.666667; credited 8.333333.
"""

from __future__ import annotations

import grpc
import pytest
from click.testing import CliRunner
from online_app import Client

from occ.cli.types import PERCENT, Percent
from occ.v1 import admin_pb2 as admin

TAX_LEDGER = 470000001
VAT20 = admin.PrepaidTax(rate_ppm=200_000, ledger_code=TAX_LEDGER, tax_code="S20")


def split(gross: int, rate_ppm: int) -> int:
    """The tax in ``gross`` at ``rate_ppm``, exact, half up (the oracle of lua/transaction.lua)."""
    d = 1_000_000 + rate_ppm
    return (2 * gross * rate_ppm + d) // (2 * d)


def top_up(account: str, amount: int, key: str, kind: int = admin.TOP_UP) -> admin.TransactionRequest:
    return admin.TransactionRequest(account_id=account, type=kind, amount_micros=amount, idempotency_key=key,
                                    ledger_code=400000009, description="voucher")  # fmt: skip


async def create(charging: Client, account: str, tax: admin.PrepaidTax | None = VAT20) -> admin.Account:
    request = admin.Account(id=account, currency="EUR", tariff_plan="retail")
    if tax is not None:
        request.prepaid_tax.CopyFrom(tax)
    return await charging.admin.CreateAccount(request)


async def rejected(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    assert failure.value.code() == code, failure.value.details()
    return failure.value.details()


async def test_a_taxed_top_up_credits_net_and_its_entry_carries_gross_and_tax(charging):
    created = await create(charging, "pre")
    assert (created.prepaid_tax.rate_ppm, created.prepaid_tax.ledger_code, created.prepaid_tax.tax_code) == (
        200_000, TAX_LEDGER, "S20")  # fmt: skip

    answer = await charging.admin.Transact(top_up("pre", 10_000_000, "v-1"))
    assert (answer.balance_micros, answer.tax_micros, answer.duplicate) == (8_333_333, 1_666_667, False)
    assert (await charging.balance("pre")).balance_micros == 8_333_333
    [entry] = await charging.events("pre")
    assert {k: entry[k] for k in ("type", "amount", "balance", "gross", "tax", "tax_rate_ppm", "tax_ledger",
                                  "tax_code", "ledger")} == {
        "type": "topup", "amount": "8333333", "balance": "8333333", "gross": "10000000", "tax": "1666667",
        "tax_rate_ppm": "200000", "tax_ledger": str(TAX_LEDGER), "tax_code": "S20", "ledger": "400000009",
    }  # fmt: skip

    again = await charging.admin.Transact(top_up("pre", 10_000_000, "v-1"))  # a repeat: same outcome, no change
    assert (again.duplicate, again.transaction_id, again.balance_micros, again.tax_micros) == (
        True, answer.transaction_id, 8_333_333, 1_666_667)  # fmt: skip
    assert len(await charging.events("pre")) == 1
    assert (await charging.balance("pre")).balance_micros == 8_333_333


async def test_payments_adjustments_and_refunds_are_not_taxed(charging):
    await create(charging, "pre")
    for kind, amount, key in ((admin.PAYMENT, 5_000_000, "p"), (admin.ADJUSTMENT, 1_000_000, "a"),
                              (admin.REFUND, 2_000_000, "r")):  # fmt: skip
        answer = await charging.admin.Transact(top_up("pre", amount, key, kind))
        assert answer.tax_micros == 0
    assert (await charging.balance("pre")).balance_micros == 4_000_000
    events = await charging.events("pre")
    assert [(e["type"], e["amount"], "tax" in e) for e in events] == [
        ("payment", "5000000", False), ("adjustment", "1000000", False), ("refund", "-2000000", False)]  # fmt: skip


async def test_rate_zero_or_none_credits_the_whole_amount(charging):
    await create(charging, "plain", None)
    await create(charging, "zero", admin.PrepaidTax(rate_ppm=0))
    for account in ("plain", "zero"):
        answer = await charging.admin.Transact(top_up(account, 10_000_000, "v"))
        assert (answer.balance_micros, answer.tax_micros) == (10_000_000, 0)
        [entry] = await charging.events(account)
        assert entry["amount"] == "10000000" and "gross" not in entry and "tax" not in entry


async def test_the_split_is_exact_and_half_up_even_where_gross_times_rate_exceeds_2_53(charging):
    cases = [
        (10_000_000, 200_000),  # 1.6666666… → 1.666667
        (1, 200_000),  # 0.1666… → 0
        (3, 200_000),  # 0.5 → 1 (half up)
        (7, 1_000_000),  # 3.5 → 4: 100 % takes half
        (1_190_000, 190_000),  # 0.19 exactly
        (2**53 - 1, 199_999),  # G × r ≈ 1.8e21 ≫ 2^53
        (2**53 - 1, 1),
        (2**53 - 2, 999_999),
    ]
    for i, (gross, rate) in enumerate(cases):
        account = f"big-{i}"
        await create(charging, account, admin.PrepaidTax(rate_ppm=rate, ledger_code=TAX_LEDGER))
        answer = await charging.admin.Transact(top_up(account, gross, "v"))
        tax = split(gross, rate)
        assert (answer.tax_micros, answer.balance_micros) == (tax, gross - tax), (gross, rate)
        [entry] = await charging.events(account)
        assert (int(entry["gross"]) if tax else gross, int(entry["amount"])) == (gross, gross - tax)


async def test_update_sets_changes_and_turns_off_the_rate(charging):
    await create(charging, "u", None)
    request = admin.UpdateAccountRequest(id="u", prepaid_tax=admin.PrepaidTax(rate_ppm=50_000, ledger_code=1))
    updated = await charging.admin.UpdateAccount(request)
    assert (updated.prepaid_tax.rate_ppm, updated.prepaid_tax.ledger_code) == (50_000, 1)
    assert (await charging.admin.Transact(top_up("u", 1_050_000, "a"))).tax_micros == 50_000

    # An update that does not name the tax leaves it alone; an update with rate 0 turns it off.
    same = await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="u", tax_profile="PRE5"))
    assert same.prepaid_tax.rate_ppm == 50_000
    off = await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="u", prepaid_tax=admin.PrepaidTax()))
    assert (off.prepaid_tax.rate_ppm, off.prepaid_tax.ledger_code, off.prepaid_tax.tax_code) == (0, 0, "")
    assert (await charging.admin.Transact(top_up("u", 1_050_000, "b"))).tax_micros == 0
    assert (await charging.balance("u")).balance_micros == 1_000_000 + 1_050_000


@pytest.mark.parametrize(
    ("tax", "field"),
    [
        (admin.PrepaidTax(rate_ppm=-1, ledger_code=1), "prepaid_tax.rate_ppm"),
        (admin.PrepaidTax(rate_ppm=1_000_001, ledger_code=1), "prepaid_tax.rate_ppm"),
        (admin.PrepaidTax(rate_ppm=200_000), "prepaid_tax.ledger_code"),
        (admin.PrepaidTax(rate_ppm=200_000, ledger_code=10**15), "prepaid_tax.ledger_code"),
        (admin.PrepaidTax(rate_ppm=200_000, ledger_code=1, tax_code="X" * 21), "prepaid_tax.tax_code"),
        (admin.PrepaidTax(rate_ppm=0, ledger_code=1), "prepaid_tax.rate_ppm"),
    ],
)
async def test_a_bad_prepaid_tax_is_invalid_argument_naming_the_field_and_writes_nothing(charging, tax, field):
    details = await rejected(create(charging, "bad", tax), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(f"{field}: ")
    await rejected(charging.admin.GetAccount(admin.GetAccountRequest(id="bad")), grpc.StatusCode.NOT_FOUND)

    await create(charging, "ok")
    update = admin.UpdateAccountRequest(id="ok", prepaid_tax=tax)
    details = await rejected(charging.admin.UpdateAccount(update), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(f"{field}: ")
    assert (await charging.admin.GetAccount(admin.GetAccountRequest(id="ok"))).prepaid_tax == VAT20


@pytest.mark.parametrize(
    ("text", "ppm"), [("20", 200_000), ("20%", 200_000), ("5.5", 55_000), ("0.0001", 1), ("100", 1_000_000),
                      ("0", 0), ("19.6", 196_000)],
)  # fmt: skip
def test_the_cli_percent_is_converted_exactly(text, ppm):
    assert PERCENT.convert(text, None, None) == ppm


@pytest.mark.parametrize("text", ["100.0001", "20.00001", "-5", "1e1", "abc", "", "20 %"])
def test_the_cli_percent_refuses_what_it_cannot_convert_exactly(text):
    import click

    with pytest.raises(click.BadParameter):
        Percent().convert(text, None, None)


def test_the_cli_needs_a_rate_with_a_tax_ledger():
    from occ.cli import main

    result = CliRunner().invoke(main, ["account", "update", "x", "--prepaid-tax-ledger", "4", "--server", "x:1"])
    assert result.exit_code == 2 and "--prepaid-tax-rate" in result.output

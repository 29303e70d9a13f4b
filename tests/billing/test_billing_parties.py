"""Seller and customer details: stored per tenant and per account, checked field by field, copied onto each invoice
when it is issued, required only where the tenant's issuer says so, and kept by migration 0005 on older rows."""

from __future__ import annotations

from datetime import date

import pytest
from alembic import command
from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from sqlalchemy import insert, inspect, select, text

from settlement.billing import document
from settlement.billing.parties import Party, decode
from settlement.billing.run import run
from settlement.billing.setup import SetupError, load_accounts, load_issuers, set_account, set_issuer
from settlement.store.database import open_store
from settlement.store.migrate import _config, upgrade
from settlement.store.schema import accounts, billing_accounts, invoices

ACME = {"name": "ACME Telecom GmbH", "address": ("Friedrichstraße 123", "10117 Berlin"), "vat_id": "DE136695976"}


def test_issuer_fields_are_checked_and_named_and_nothing_is_written_on_an_error(store):
    with store.begin() as c:
        for changes, option in (
            ({"address": ("Street 1",)}, "--name"),  # a new issuer needs a name …
            ({"name": "ACME"}, "--address"),  # … and an address
            ({**ACME, "vat_id": "DE123"}, "--vat-id"),
            ({**ACME, "iban": "DE89370400440532013001"}, "--iban"),  # checksum
            ({**ACME, "bic": "COBA"}, "--bic"),
            ({**ACME, "email": "billing at acme"}, "--email"),
            ({**ACME, "name": "ACME\x00"}, "--name"),  # XML (the ERP document) cannot carry it
        ):
            with pytest.raises(SetupError, match=option):
                set_issuer(c, "t1", **changes)
        assert load_issuers(c) == {}
        issuer = set_issuer(c, "t1", **ACME, iban="de89 3704 0044 0532 0130 00", bic="cobadeffxxx")
        changed = set_issuer(c, "t1", email="billing@acme.example", require_details=True)  # the rest is kept
    assert (issuer.party.iban, issuer.party.bic) == ("DE89370400440532013000", "COBADEFFXXX")  # compact, checked
    assert changed.party == Party(**ACME, iban="DE89370400440532013000", bic="COBADEFFXXX",
                                  email="billing@acme.example")  # fmt: skip
    assert changed.require_details
    with store.connect() as c:
        assert load_issuers(c)["t1"] == changed


def test_customer_details_are_billing_settings_of_the_account(store):
    add_account(store, "lz")
    with store.begin() as c:
        set_account(c, "lz", customer_name="Łukasz Żółć", customer_address=("ul. Świętokrzyska 12", "00-916 Warszawa"),
                    customer_vat_id="pl 526-104-08-28")  # fmt: skip
        with pytest.raises(SetupError, match="--vat-id"):
            set_account(c, "lz", customer_vat_id="PL123")
        set_account(c, "lz", billing_day=5)  # other settings leave the customer as it is
    with store.connect() as c:
        [account] = load_accounts(c, ["lz"])
    assert account.customer == Party(name="Łukasz Żółć", address=("ul. Świętokrzyska 12", "00-916 Warszawa"),
                                     vat_id="PL5261040828")  # fmt: skip
    assert account.billing_day == 5


def test_an_invoice_keeps_the_parties_it_was_issued_with(store):
    add_profiles(store)
    with store.begin() as c:
        set_issuer(c, "default", **ACME)
    add_account(store, "a", tax_profile="VAT20", customer_name="Łukasz Żółć", customer_address=("Kraków",))
    add_xdrs(store, [xdr("a", "session", euros("1.00"), "400000001", ms(2026, 1, 10), units=60)])
    assert run(store, date(2026, 2, 1)).issued == 1
    with store.begin() as c:  # both move after the invoice was issued
        set_issuer(c, "default", address=("Unter den Linden 1", "10117 Berlin"))
        set_account(c, "a", customer_address=("Gdańsk",))
    with store.connect() as c:
        row = c.execute(select(invoices.c.seller, invoices.c.buyer)).one()
        view = document.load(c, document.find(c, "00000001"))
    assert decode(row.seller).address == ("Friedrichstraße 123", "10117 Berlin")
    assert decode(row.buyer) == Party(name="Łukasz Żółć", address=("Kraków",))
    printed = document.text(view)
    assert "From:    ACME Telecom GmbH\n         Friedrichstraße 123\n" in printed
    assert "Bill to: Łukasz Żółć\n         Kraków\n" in printed and "Gdańsk" not in printed


def test_without_an_issuer_invoices_issue_and_say_what_is_missing(store):
    add_profiles(store)
    add_account(store, "a", tax_profile="EXEMPT")
    add_xdrs(store, [xdr("a", "session", euros("1.00"), "400000001", ms(2026, 1, 10), units=60)])
    assert run(store, date(2026, 2, 1)).issued == 1
    with store.connect() as c:
        printed = document.text(document.load(c, document.find(c, "00000001")))
    assert "From:    Seller details not configured (occ bill issuer set): not a valid tax invoice" in printed
    assert "Bill to: No customer name or address (occ bill account set a --name … --address …)" in printed


def test_an_issuer_that_requires_details_keeps_invoices_to_unnamed_customers_draft(store):
    add_profiles(store)
    with store.begin() as c:
        set_issuer(c, "strict", **ACME, require_details=True)
    add_account(store, "anon", tax_profile="EXEMPT", tenant="strict")
    add_account(store, "named", tax_profile="EXEMPT", tenant="strict", customer_name="Named Ltd",
                customer_address=("1 Main St",))  # fmt: skip
    add_account(store, "elsewhere", tax_profile="EXEMPT")  # tenant default: no issuer, nothing required
    add_xdrs(store, [xdr(a, "session", euros("1.00"), "400000001", ms(2026, 1, 10), units=60)
                     for a in ("anon", "named", "elsewhere")])  # fmt: skip
    report = run(store, date(2026, 2, 1))
    outcomes = {o.account: o for o in report.outcomes}
    assert {a: o.status for a, o in outcomes.items()} == {"anon": "DRAFT", "named": "ISSUED", "elsewhere": "ISSUED"}
    assert outcomes["anon"].problems == ("customer name and address required by tenant 'strict''s issuer settings: "
                                         "occ bill account set ACCOUNT --name … --address …",)  # fmt: skip
    with store.begin() as c:
        set_account(c, "anon", customer_name="Now Named", customer_address=("2 Main St",))
    [again] = run(store, date(2026, 2, 1)).outcomes
    assert (again.account, again.status, again.number) == ("anon", "ISSUED", 2)  # no gap: the DRAFT took no number


def test_migration_0005_keeps_rows_written_before_it(db_url):
    engine = open_store(db_url)
    upgrade(engine, "0004")
    with engine.begin() as c:
        c.execute(insert(accounts), {"account": "old", "currency": "EUR", "opening_balance": 0, "first_seen_ms": 0})
        c.execute(text("INSERT INTO billing_accounts (account, tenant, customer_code, customer_class, tax_profile, "
                       "billing_day, timezone, updated_ms) VALUES ('old', 'default', 'C-OLD', '', '', 1, 'UTC', 0)"))
        c.execute(text("INSERT INTO invoices (tenant, account, customer_code, kind, period_start_ms, period_end_ms, "
                       "timezone, currency, tax_profile, tax_mode, brought_forward, charges, payments, adjustments, "
                       "tax, rounding, carried_forward, xdr_count, created_ms, number, revision, state, "
                       "state_reason, updated_ms) VALUES ('default', 'old', 'C-OLD', 'REGULAR', 0, 1, 'UTC', 'EUR', "
                       "'', 'EXEMPT', 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 'COMPLETE', '', 0)"))  # fmt: skip
    assert upgrade(engine, "0005_parties") == ("0004", "0005_parties")
    with engine.connect() as c:
        row = c.execute(select(billing_accounts.c.customer_name, billing_accounts.c.customer_address,
                               billing_accounts.c.customer_vat_id)).one()  # fmt: skip
        invoice = c.execute(select(invoices.c.seller, invoices.c.buyer)).one()
        [account] = load_accounts(c, ["old"])
    assert tuple(row) == ("", "", "") and tuple(invoice) == ("", "")
    assert account.customer == Party() and account.customer_code == "C-OLD"
    command.downgrade(_config(engine), "0004")  # and back
    with engine.connect() as c:
        assert "seller" not in {col["name"] for col in inspect(c).get_columns("invoices")}
        assert "billing_issuers" not in inspect(c).get_table_names()
        assert c.execute(select(invoices.c.customer_code)).scalar() == "C-OLD"
    engine.dispose()

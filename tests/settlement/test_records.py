"""The rows settlement writes (frozen Structs) and the words it writes into them (StrEnum vocabularies), on a real
SQL store (SQLite and PostgreSQL): what is booked is exactly what is stored, and every word is the string it was."""

from __future__ import annotations

from enum import StrEnum

import msgspec
import pytest
from books import JAN
from click.testing import CliRunner
from sqlalchemy import Column, MetaData, String, Table, select

from occ.cli import main
from settlement.entries import book
from settlement.records import AccountRow, LedgerRow, XdrRow
from settlement.store.schema import VOCABULARY_COLUMNS, accounts, check_vocabulary_fits, ledger, xdrs
from settlement.vocabulary import (
    AccountStatus,
    BatchState,
    InvoiceKind,
    InvoiceState,
    ItemOutcome,
    OutboxAction,
    OutboxState,
    RecordType,
    TaxMode,
    XdrStatus,
)
from settlement.writer import BatchWriter, Booked, row_dicts

VOCABULARIES = (XdrStatus, RecordType, AccountStatus, TaxMode, InvoiceKind, InvoiceState, OutboxState, OutboxAction,
                BatchState, ItemOutcome)
CLOSE = {
    "type": "session_close", "id": "call-1", "account": "alice", "amount": "0", "balance": "9700000",
    "currency": "EUR", "time_ms": str(JAN), "session_id": "call-1", "rg": "100", "units": "61", "service": "voice",
    "calling": "+441", "called": "+442079460000", "group": "UK_FIXED", "tariff": "abc", "rate": "STANDARD",
    "cost": "300834", "over": "1", "cause": "TERMINATE", "start_s": str(JAN // 1000 - 61), "plan": "retail",
    "ledger": "400000001",
}  # fmt: skip
TAXED_TOPUP = {
    "type": "topup", "id": "t", "account": "alice", "amount": "8333333", "balance": "18033333", "currency": "EUR",
    "ledger": "400000009", "idempotency_key": "k", "time_ms": str(JAN), "gross": "10000000", "tax": "1666667",
    "tax_rate_ppm": "200000", "tax_ledger": "470000001", "tax_code": "S20",
}  # fmt: skip


@pytest.mark.parametrize("words", VOCABULARIES, ids=lambda words: words.__name__)
def test_every_word_is_the_string_stored_and_printed(words):
    for word in words:
        assert word == word.value == word.name
        assert f"{word}" == str(word) == word.value and type(str(word)) is str


def test_every_word_fits_its_column_and_a_word_too_long_is_named():
    check_vocabulary_fits(VOCABULARY_COLUMNS)
    assert {words for _, words in VOCABULARY_COLUMNS} == set(VOCABULARIES)

    class Long(StrEnum):
        SHORT = "SHORT"
        MUCH_TOO_LONG_FOR_IT = "MUCH_TOO_LONG_FOR_IT"

    narrow = Table("narrow", MetaData(), Column("state", String(10)))
    with pytest.raises(ValueError, match=r"narrow\.state \(VARCHAR\(10\)\) cannot hold Long 'MUCH_TOO_LONG_FOR_IT'"):
        check_vocabulary_fits(((narrow.c.state, Long),))


def test_the_records_are_the_tables_columns_in_order():
    assert XdrRow.__struct_fields__ == tuple(c.name for c in xdrs.columns)
    assert LedgerRow.__struct_fields__ == tuple(c.name for c in ledger.columns)
    assert AccountRow.__struct_fields__ == tuple(c.name for c in accounts.columns)


def test_booked_rows_are_frozen_structs_with_the_vocabulary():
    (paid, taken), (payment, tax) = book("s001:1-0", TAXED_TOPUP, 5)
    assert (payment.record_type, payment.status) == (RecordType.PAYMENT, XdrStatus.BILLABLE)
    assert (tax.record_type, tax.status, tax.cost, tax.tax_amount) == (RecordType.TAX, XdrStatus.BILLABLE, 1_666_667,
                                                                      1_666_667)  # fmt: skip
    assert (paid.amount, taken.amount, taken.id, taken.xdr_id) == (10_000_000, -1_666_667, "s001:1-0:tax",
                                                                  "s001:1-0:tax")  # fmt: skip
    with pytest.raises(AttributeError):
        payment.cost = 0  # type: ignore[misc]


def test_what_is_booked_is_exactly_what_is_stored(store):
    booked = []
    for key, fields in (("s001:1-0", CLOSE), ("s001:2-0", TAXED_TOPUP), ("s001:3-0", {**CLOSE, "ledger": ""})):
        ledger_rows, xdr_rows = book(key, fields, 5)
        booked.append(Booked(key, ledger_rows, xdr_rows, ("alice", "EUR", JAN)))
    written = BatchWriter(store).write(booked)
    assert (written.ledger_rows, written.xdr_rows, written.refused) == (2, 4, {})
    with store.connect() as sql:
        stored_xdrs = [XdrRow(**r._asdict()) for r in sql.execute(select(xdrs).order_by(xdrs.c.id))]
        stored_ledger = [LedgerRow(**r._asdict()) for r in sql.execute(select(ledger).order_by(ledger.c.id))]
    assert stored_xdrs == sorted((x for b in booked for x in b.xdrs), key=lambda x: x.id)
    assert stored_ledger == sorted((x for b in booked for x in b.ledger), key=lambda x: x.id)
    by_id = {x.id: x for x in stored_xdrs}
    assert (by_id["s001:1-0"].start_ms, by_id["s001:1-0"].over_units) == (JAN - 61_000, 1)
    assert (by_id["s001:3-0"].status, by_id["s001:3-0"].status_reason) == ("RAW_EXCEPTED", "no ledger code")


def test_row_dicts_are_what_an_insert_takes():
    [close] = book("s001:1-0", CLOSE, 5)[1]
    [row] = row_dicts([close])
    assert list(row) == [c.name for c in xdrs.columns]
    assert msgspec.convert(row, XdrRow) == close


def test_xdr_list_offers_exactly_the_statuses():
    result = CliRunner().invoke(main, ["xdr", "list", "--status", "BOGUS", "--db-url", "sqlite:///unused"])
    assert result.exit_code == 2
    assert all(f"'{status}'" in result.output for status in XdrStatus), result.output

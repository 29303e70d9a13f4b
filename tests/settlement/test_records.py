"""The words settlement writes (StrEnum vocabularies): each is the string it always was, and fits its column."""

from __future__ import annotations

from enum import StrEnum

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, MetaData, String, Table

from occ.cli import main
from settlement.store.schema import VOCABULARY_COLUMNS, check_vocabulary_fits
from settlement.vocabulary import (
    InvoiceKind,
    InvoiceState,
    OutboxState,
    RecordType,
    TaxMode,
    XdrStatus,
)

VOCABULARIES = (XdrStatus, RecordType, TaxMode, InvoiceKind, InvoiceState, OutboxState)


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


def test_xdr_list_offers_exactly_the_statuses():
    result = CliRunner().invoke(main, ["xdr", "list", "--status", "BOGUS", "--db-url", "sqlite:///unused"])
    assert result.exit_code == 2
    assert all(f"'{status}'" in result.output for status in XdrStatus), result.output

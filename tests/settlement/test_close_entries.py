"""The bulk path for session closes books exactly what the reference (entries.book) books, or leaves the entry to it."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.close_entries import close_xdr
from settlement.entries import Malformed, book

KEY = "s017:1767603600000-0"
NOW_MS = 1_767_700_000_000
CLOSE = {
    "type": "session_close", "account": "acct1", "amount": "0", "balance": "99000000", "currency": "EUR",
    "time_ms": "1767603660000", "id": "call-1:close:100", "over": "0", "cause": "TERMINATE",
    "started_ms": "1767603600000", "session_id": "call-1", "rg": "100", "service": "voice", "units": "60",
    "cost": "300000", "group": "UK_FIXED", "ledger": "400000001", "rate": "STANDARD", "tariff": "ab" * 32,
    "plan": "retail", "calling": "+441632960000", "called": "+442079460000", "start_s": "1767603600",
}  # fmt: skip


def packed(fields: dict[str, str]) -> bytes:
    return msgspec.msgpack.encode(fields)  # as lua/read.lua packs an entry's fields


def reference(fields: dict[str, str]) -> object:
    try:
        return book(KEY, fields, NOW_MS)
    except Malformed:
        return None


def test_a_well_formed_close_takes_the_bulk_path_and_books_the_references_xdr():
    xdr = close_xdr(KEY, packed(CLOSE), NOW_MS)
    assert xdr is not None
    assert book(KEY, CLOSE, NOW_MS) == ((), (xdr,))


@pytest.mark.parametrize(
    "change",
    [
        {"cost": "5.0"}, {"units": "1e3"}, {"balance": "05"}, {"cost": "-0"}, {"amount": "0.0"}, {"amount": "-0"},
        {"currency": "EUR\n"}, {"currency": "EU1"}, {"start_s": "0"}, {"start_s": ""}, {"over": "-1"},
        {"rg": str(2**32)}, {"ledger": "4" * 16}, {"type": "session_charge"}, {"cause": "EVENT"}, {"session_id": ""},
        {"amount": "5"}, {"units": "+5"}, {"units": " 5"}, {"units": "1_0"}, {"time_ms": "4102444800001"},
    ],
)  # fmt: skip
def test_what_the_bulk_path_reads_differently_is_left_to_the_reference(change):
    fields = {**CLOSE, **change}
    xdr = close_xdr(KEY, packed(fields), NOW_MS)
    assert (xdr is not None) == (change == {"start_s": "0"})  # a call that started at the epoch: canonical
    if xdr is not None:  # taken: then exactly as the reference books it
        assert book(KEY, fields, NOW_MS) == ((), (xdr,))
    elif change in ({"cost": "5.0"}, {"units": "1e3"}, {"amount": "0.0"}):
        with pytest.raises(Malformed, match="must be an integer"):  # msgspec would have read these as integers
            book(KEY, fields, NOW_MS)


def test_a_close_without_start_s_starts_at_its_own_time_on_both_paths():
    fields = {k: v for k, v in CLOSE.items() if k != "start_s"}
    xdr = close_xdr(KEY, packed(fields), NOW_MS)
    assert xdr is not None and xdr.start_ms == int(CLOSE["time_ms"])
    assert book(KEY, fields, NOW_MS) == ((), (xdr,))


integers = st.one_of(
    st.integers(-(10**16), 10**16).map(str),
    st.sampled_from(["", "0", "-0", "05", "5.0", "1e3", "+5", " 5", "x", "9" * 20, "٣"]),
)
texts = st.one_of(st.text(max_size=20), st.sampled_from(["", "EUR", "eur", "E", "400000001", "abc"]))


@settings(max_examples=300, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(CLOSE)), st.one_of(integers, texts), max_size=4
    ),
    dropped=st.sets(st.sampled_from(sorted(CLOSE)), max_size=2),
)
def test_both_paths_agree_on_any_close_like_entry(changes, dropped):
    fields = {k: v for k, v in {**CLOSE, **changes}.items() if k not in dropped}
    xdr = close_xdr(KEY, packed(fields), NOW_MS)
    if xdr is not None:  # the bulk path never takes an entry the reference would refuse or book differently
        assert reference(fields) == ((), (xdr,))

"""Bounded fuzzing of the CCR reader: any byte flipped in a valid request's AVPs is read, or refused with a
base-protocol error (a ProtocolError with a Result-Code); nothing else escapes (hypothesis, a bounded run)."""

from __future__ import annotations

from diameter.message.avp.grouped import MultipleServicesCreditControl
from diameter_peer import E164, INITIAL, Wire, ask, call_to
from hypothesis import given, settings
from hypothesis import strategies as st

from occ.diameter.avps import Avps
from occ.diameter.ccr import read_ccr
from occ.diameter.codec import HEADER_BYTES, split_avps
from occ.diameter.protocol import ProtocolError

_REQUEST = Wire.ccr("client.test;fuzz", INITIAL, 0, subscription=(E164, "+447700900001"))
_REQUEST.service_information = call_to("tel:+442079460000")
_REQUEST.multiple_services_credit_control = [
    MultipleServicesCreditControl(rating_group=1, requested_service_unit=ask(60))
]
VALID = _REQUEST.as_bytes()[HEADER_BYTES:]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_a_mangled_request_is_read_or_refused_with_a_result_code(flips):
    data = bytearray(VALID)
    for position, value in flips:
        data[position] = value
    try:
        request = read_ccr(Avps(split_avps(bytes(data))), country_code="44", account_of_session=lambda _: None)
    except ProtocolError as error:
        assert 5000 <= error.result_code < 6000
        return
    assert request.work.session_id

"""The documented mappings (docs/diameter.md): Subscription-Id → account, Service-Context-Id → service, and the
reading of a CCR's AVPs into the engine's request, without a network."""

from __future__ import annotations

import pytest
from diameter.message import Avp
from diameter.message import constants as c
from diameter_peer import DATA, E164, INITIAL, SIP_URI, VOICE, Wire, ask, call_to
from online_app import MONDAY_PEAK

from occ.core.requests import Kind
from occ.diameter.avps import Avps
from occ.diameter.ccr import account_of, read_ccr
from occ.diameter.protocol import ProtocolError
from rating_engine import Service


@pytest.mark.parametrize(("kind", "data", "account"), [
    (0, "+447700900001", "447700900001"),
    (1, "001010123456789", "001010123456789"),
    (2, "sip:+447700900001@ims.test;user=phone", "447700900001"),
    (2, "sip:alice@ims.test", "alice"),
    (2, "tel:+447700900001;phone-context=ims.test", "447700900001"),
    (3, "alice@realm.test", "alice@realm.test"),
    (4, "private-42", "private-42"),
])  # fmt: skip
def test_subscription_ids_name_accounts(kind, data, account):
    assert account_of(kind, data) == account


@pytest.mark.parametrize(("kind", "data"), [(0, "alice"), (1, "+"), (2, "sip:@ims.test"), (3, "")])
def test_subscription_ids_that_name_no_account_are_refused(kind, data):
    with pytest.raises(ValueError):
        account_of(kind, data)


def _read(request, **options):
    avps = Avps(request.avps)
    return read_ccr(avps, country_code="44", account_of_session=options.get("known", lambda _: None))


def _request(context: str = VOICE):
    request = Wire.ccr("client.test;1", INITIAL, 0, context=context, subscription=(E164, "+447700900001"))
    request.add_multiple_services_credit_control(requested_service_unit=ask(90), rating_group=7, service_identifier=3)
    return request


def test_a_voice_initial_request_reads_into_a_start_with_parties_and_quota():
    request = _request("10.32260@3gpp.org")
    request.service_information = call_to("sip:02079460000@ims.test;user=phone", "tel:+447700900001")
    read = _read(request)
    work = read.work
    assert (work.kind, work.subscriber, work.session_id, work.request_number) == (Kind.START, "447700900001",
                                                                                 "client.test;1", 0)  # fmt: skip
    assert (work.called, work.calling, work.destination) == ("sip:02079460000@ims.test;user=phone",
                                                             "tel:+447700900001", "442079460000")  # fmt: skip
    assert [(q.rating_group, q.service, q.requested, q.used) for q in work.quotas] == [(7, Service.VOICE, 90, 0)]
    assert read.identifiers == {7: 3}
    assert work.event_time_s == MONDAY_PEAK  # Event-Timestamp, exactly


def test_data_units_are_octets_input_and_output_added():
    request = Wire.ccr("client.test;2", INITIAL, 0, context=DATA, subscription=(SIP_URI, "sip:bob@ims.test"))
    units = Avp.new(c.AVP_REQUESTED_SERVICE_UNIT, value=[Avp.new(c.AVP_CC_INPUT_OCTETS, value=1000),
                                                         Avp.new(c.AVP_CC_OUTPUT_OCTETS, value=24)])  # fmt: skip
    request.append_avp(Avp.new(c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL, value=[units]))
    [quota] = _read(request).work.quotas
    assert (quota.service, quota.requested, quota.rating_group) == (Service.DATA, 1024, 0)


@pytest.mark.parametrize(("change", "code", "avp"), [
    (lambda r: setattr(r, "cc_request_number", 3), 5004, c.AVP_CC_REQUEST_NUMBER),  # INITIAL must be 0
    (lambda r: setattr(r, "cc_request_type", 9), 5004, c.AVP_CC_REQUEST_TYPE),
    (lambda r: setattr(r, "subscription_id", []), 5005, c.AVP_SUBSCRIPTION_ID),
    (lambda r: setattr(r, "multiple_services_credit_control", []), 5005, c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL),
    (lambda r: setattr(r, "auth_application_id", 16777238), 5004, c.AVP_AUTH_APPLICATION_ID),
    (lambda r: setattr(r, "service_information", call_to("sip:bob@ims.test")), 5004, c.AVP_TGPP_SERVICE_INFORMATION),
])  # fmt: skip
def test_a_request_that_breaks_a_rule_is_refused_naming_the_avp(change, code, avp):
    request = _request()
    change(request)
    with pytest.raises(ProtocolError) as error:
        _read(request)
    assert (error.value.result_code, error.value.failed.code) == (code, avp)

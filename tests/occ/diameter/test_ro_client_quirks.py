"""What Kamailio's ims_charging (a real Ro client, tests/diameter_peers) puts in its CCRs, read the way it means it:

- its Origin-Host and Origin-Realm twice (the module writes them and its Diameter stack cdp adds them again, with
  the same values): identical copies read as one; copies that differ are still 5009
  (DIAMETER_AVP_OCCURS_TOO_MANY_TIMES) with the second copy as Failed-AVP;
- Auth-Application-Id only inside Vendor-Specific-Application-Id: that one counts when the command-level AVP is
  absent; no application 4 anywhere is still 5005 or 5004.
"""

from __future__ import annotations

import pytest
from diameter.message import Avp
from diameter.message import constants as c
from diameter.message.avp.grouped import MultipleServicesCreditControl, RequestedServiceUnit, SubscriptionId
from diameter.message.commands import CreditControlRequest

from occ.diameter.avps import Avps
from occ.diameter.ccr import read_ccr
from occ.diameter.protocol import ProtocolError, Result


def kamailio_ccr(*extra: Avp) -> Avps:
    ccr = CreditControlRequest()
    ccr.session_id = "kamailio.test;1;1"
    ccr.origin_host, ccr.origin_realm, ccr.destination_realm = b"kamailio.test", b"test", b"test"
    ccr.auth_application_id, ccr.service_context_id = 4, "ext.01.001.8.32260@3gpp.org"
    ccr.cc_request_type, ccr.cc_request_number = 1, 0
    ccr.subscription_id = [SubscriptionId(subscription_id_type=2, subscription_id_data="sip:447700900001@127.0.0.1")]
    ccr.multiple_services_credit_control = [
        MultipleServicesCreditControl(rating_group=100, requested_service_unit=RequestedServiceUnit(cc_time=30))
    ]
    return Avps([*ccr.avps, *extra])


def no_session(_: str) -> None:
    return None


def test_identical_copies_of_origin_host_and_realm_read_as_one() -> None:
    avps = kamailio_ccr(Avp.new(c.AVP_ORIGIN_HOST, value=b"kamailio.test"), Avp.new(c.AVP_ORIGIN_REALM, value=b"test"))
    request = read_ccr(avps, country_code="44", account_of_session=no_session)
    assert (request.origin_host, request.work.subscriber) == ("kamailio.test", "447700900001")


@pytest.mark.parametrize(("code", "other"), [(c.AVP_ORIGIN_HOST, b"elsewhere.test"), (c.AVP_ORIGIN_REALM, b"other")])
def test_differing_copies_are_still_refused_with_5009(code: int, other: bytes) -> None:
    second = Avp.new(code, value=other)
    with pytest.raises(ProtocolError) as refused:
        read_ccr(kamailio_ccr(second), country_code="44", account_of_session=no_session)
    assert refused.value.result_code == Result.AVP_OCCURS_TOO_MANY_TIMES
    assert refused.value.failed is second


def without_command_level_application(avps: Avps) -> Avps:
    return Avps([avp for avp in avps.list if avp.code != c.AVP_AUTH_APPLICATION_ID])


def vendor_specific(application: int) -> Avp:
    return Avp.new(
        c.AVP_VENDOR_SPECIFIC_APPLICATION_ID,
        value=[Avp.new(c.AVP_VENDOR_ID, value=10415), Avp.new(c.AVP_AUTH_APPLICATION_ID, value=application)],
    )


def test_auth_application_id_inside_vendor_specific_application_id_counts_when_alone() -> None:
    avps = without_command_level_application(kamailio_ccr(vendor_specific(4)))
    assert read_ccr(avps, country_code="44", account_of_session=no_session).request_number == 0


@pytest.mark.parametrize(
    ("extra", "code"), [((), Result.MISSING_AVP), ((vendor_specific(16777238),), Result.INVALID_AVP_VALUE)]
)
def test_no_credit_control_application_anywhere_is_refused(extra: tuple[Avp, ...], code: int) -> None:
    with pytest.raises(ProtocolError) as refused:
        read_ccr(
            without_command_level_application(kamailio_ccr(*extra)), country_code="44", account_of_session=no_session
        )
    assert refused.value.result_code == code
    assert refused.value.failed.code == c.AVP_AUTH_APPLICATION_ID

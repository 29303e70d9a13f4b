"""Outcomes of the engine as Credit-Control-Answers: Result-Code at the command level and inside every MSCC,
Granted-Service-Unit in the service's unit, Validity-Time with every grant, Final-Unit-Indication (TERMINATE) when
the grant is the last the credit allows, Check-Balance-Result and Cost-Information for the events that ask."""

from __future__ import annotations

import logging

import pycountry
from diameter.message import Avp
from diameter.message import constants as c

from occ.core.errors import InvalidRequest, NoTariff, StoreUnavailable, as_occ_error
from occ.core.requests import Action, EventOutcome, Kind, Outcome, QuotaOutcome, SessionOutcome
from occ.diameter.ccr import CreditRequest
from occ.diameter.protocol import (
    CHECK_BALANCE_ENOUGH,
    CHECK_BALANCE_NO_CREDIT,
    CREDIT_CONTROL_APP,
    FINAL_UNIT_TERMINATE,
    Result,
)
from rating_engine import Service

log = logging.getLogger(__name__)
MICRO_EXPONENT = -6  # Unit-Value = Value-Digits × 10^Exponent: micro-units exactly
_UNIT_AVPS = {Service.VOICE: c.AVP_CC_TIME, Service.DATA: c.AVP_CC_TOTAL_OCTETS,
              Service.MESSAGE: c.AVP_CC_SERVICE_SPECIFIC_UNITS}  # fmt: skip


def head(session_id: str, result_code: int, origin: tuple[str, str], request_type: int, number: int) -> list[Avp]:
    """The AVPs every CCA starts with."""
    return [
        Avp.new(c.AVP_SESSION_ID, value=session_id),
        Avp.new(c.AVP_RESULT_CODE, value=result_code),
        Avp.new(c.AVP_ORIGIN_HOST, value=origin[0].encode()),
        Avp.new(c.AVP_ORIGIN_REALM, value=origin[1].encode()),
        Avp.new(c.AVP_AUTH_APPLICATION_ID, value=CREDIT_CONTROL_APP),
        Avp.new(c.AVP_CC_REQUEST_TYPE, value=request_type),
        Avp.new(c.AVP_CC_REQUEST_NUMBER, value=number),
    ]


def credit_answer(request: CreditRequest, outcome: Outcome, origin: tuple[str, str], validity_time_s: int) -> list[Avp]:
    """The CCA's AVPs (Result-Code is ``outcome.code``)."""
    work = request.work
    avps = head(work.session_id, outcome.code, origin, request.request_type, request.request_number)
    if isinstance(outcome, SessionOutcome):
        return avps + _session_items(request, outcome, validity_time_s)
    assert isinstance(outcome, EventOutcome)
    return avps + _event_items(request, outcome)


def refused(request: CreditRequest, code: int, origin: tuple[str, str]) -> list[Avp]:
    """The CCA's AVPs for a request the engine failed with ``code``: that code at the command level and in an MSCC
    for every item asked about."""
    work = request.work
    avps = head(work.session_id, code, origin, request.request_type, request.request_number)
    if not request.from_mscc:
        return avps
    groups = [quota.rating_group for quota in work.quotas] if work.kind is not Kind.EVENT else [work.rating_group]
    return avps + [_mscc(request, group, [Avp.new(c.AVP_RESULT_CODE, value=code)]) for group in groups]


def error_code(error: BaseException) -> int:
    """The Result-Code of a CCR the engine refused with an error: a Redis outage (the error table's StoreUnavailable)
    is TOO_BUSY, so the client may try again or elsewhere; a bug is logged and answered UNABLE_TO_COMPLY."""
    error = as_occ_error(error) or error
    if isinstance(error, StoreUnavailable):
        return Result.TOO_BUSY
    if isinstance(error, NoTariff):
        return Result.RATING_FAILED
    if isinstance(error, InvalidRequest):
        return Result.INVALID_AVP_VALUE
    log.error("credit-control request failed", exc_info=error)
    return Result.UNABLE_TO_COMPLY


def _grant(service: Service, units: int) -> Avp:
    return Avp.new(c.AVP_GRANTED_SERVICE_UNIT, value=[Avp.new(_UNIT_AVPS[service], value=units)])


def _quota_avps(quota: QuotaOutcome, service: Service, validity_time_s: int, *, with_result: bool = True) -> list[Avp]:
    """Granted-Service-Unit, Validity-Time, Result-Code, Final-Unit-Indication of one item (MSCC order); the
    command level of a request without MSCC takes them without Result-Code (the command's covers it)."""
    avps = [_grant(service, quota.granted)] if quota.granted else []
    if quota.granted and validity_time_s:
        avps.append(Avp.new(c.AVP_VALIDITY_TIME, value=validity_time_s))
    if with_result:
        avps.append(Avp.new(c.AVP_RESULT_CODE, value=quota.code))
    if quota.final_unit:
        action = Avp.new(c.AVP_FINAL_UNIT_ACTION, value=FINAL_UNIT_TERMINATE)
        avps.append(Avp.new(c.AVP_FINAL_UNIT_INDICATION, value=[action]))
    return avps


def _session_items(request: CreditRequest, outcome: SessionOutcome, validity_time_s: int) -> list[Avp]:
    answered = {quota.rating_group: quota for quota in outcome.quotas}
    items = []
    for asked in request.work.quotas:  # every item asked about is answered, with its own Result-Code
        quota = answered.get(asked.rating_group) or QuotaOutcome(asked.rating_group, outcome.code, 0, 0, 0, 0, 0, "")
        if not request.from_mscc:
            return _quota_avps(quota, asked.service, validity_time_s, with_result=False)
        items.append(_mscc(request, asked.rating_group, _quota_avps(quota, asked.service, validity_time_s)))
    return items


def _mscc(request: CreditRequest, rating_group: int, quota_avps: list[Avp]) -> Avp:
    grant = [avp for avp in quota_avps if avp.code == c.AVP_GRANTED_SERVICE_UNIT]
    rest = [avp for avp in quota_avps if avp.code != c.AVP_GRANTED_SERVICE_UNIT]
    ids = request.identifiers
    service_id = [Avp.new(c.AVP_SERVICE_IDENTIFIER, value=ids[rating_group])] if rating_group in ids else []
    rating = [Avp.new(c.AVP_RATING_GROUP, value=rating_group)]
    return Avp.new(c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL, value=grant + service_id + rating + rest)


def _event_items(request: CreditRequest, outcome: EventOutcome) -> list[Avp]:
    work = request.work
    if work.action is Action.CHECK_BALANCE:
        result = CHECK_BALANCE_ENOUGH if outcome.enough_credit else CHECK_BALANCE_NO_CREDIT
        return [Avp.new(c.AVP_CHECK_BALANCE_RESULT, value=result)]
    if work.action is Action.PRICE_ENQUIRY:
        return _cost(outcome)
    granted = work.units if outcome.code == Result.SUCCESS and work.action is Action.DIRECT_DEBIT else 0
    quota = QuotaOutcome(work.rating_group, outcome.code, granted, 0, outcome.cost_micros, 0, 0, "")
    if not request.from_mscc:
        return _quota_avps(quota, work.service, 0, with_result=False)
    return [_mscc(request, work.rating_group, _quota_avps(quota, work.service, 0))]


def _cost(outcome: EventOutcome) -> list[Avp]:
    """Cost-Information in micro-units (Value-Digits × 10^-6) and the ISO 4217 numeric currency code."""
    currency = pycountry.currencies.get(alpha_3=outcome.currency) if outcome.currency else None
    if outcome.code != Result.SUCCESS or currency is None:
        return []
    unit_value = Avp.new(c.AVP_UNIT_VALUE, value=[Avp.new(c.AVP_VALUE_DIGITS, value=outcome.cost_micros),
                                                  Avp.new(c.AVP_EXPONENT, value=MICRO_EXPONENT)])  # fmt: skip
    cost = [unit_value, Avp.new(c.AVP_CURRENCY_CODE, value=int(currency.numeric))]
    return [Avp.new(c.AVP_COST_INFORMATION, value=cost)]

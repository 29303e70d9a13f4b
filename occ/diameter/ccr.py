"""A Credit-Control-Request read into the engine's ``Work``: every check is made before anything is charged, and a
request that fails one is a :class:`ProtocolError` naming the AVP (docs/diameter.md has the table).

Mapping (TS 32.299 / RFC 8506 → OCC):

- Session-Id → the session id; CC-Request-Number → the request number (the duplicate key with it).
- CC-Request-Type INITIAL / UPDATE / TERMINATE / EVENT → start / update / end / event.
- Subscription-Id → the account (:func:`account_of`); of several, the lowest Subscription-Id-Type wins.
- Service-Context-Id ``…32260@3gpp.org`` (IMS) → voice in seconds (CC-Time), ``…32251@3gpp.org`` (PS) → data in
  octets (CC-Total-Octets, or CC-Input-Octets + CC-Output-Octets), ``…32274@3gpp.org`` (SMS) → messages
  (CC-Service-Specific-Units).
- Multiple-Services-Credit-Control → one quota item each: Rating-Group (else the first Service-Identifier, else
  0); Requested-Service-Unit → units wanted (:data:`DEFAULT_REQUEST` when it carries no unit of the service);
  Used-Service-Unit (all of them, added up) → units used. Without MSCC, the command-level Requested- and
  Used-Service-Unit make one item.
- Service-Information: IMS-Information Called- / Calling-Party-Address, SMS-Information Recipient-Address /
  Originator-Received-Address (Address-Data) → the called and calling parties.
- Requested-Action (EVENT) → the event action; its units are the Requested-Service-Unit's (else the Used-).
- Event-Timestamp → when usage began (now when absent).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
from diameter.message import constants as c
from diameter.message.avp.avp import AvpTime

from occ.core.requests import Action, Kind, Quota, Work
from occ.diameter.avps import Avps, example_of, name_of, value_of
from occ.diameter.protocol import (
    TGPP_VENDOR,
    ProtocolError,
    RequestedAction,
    RequestType,
    Result,
    SubscriptionType,
)
from rating_engine import Service, normalize_number
from rating_engine.tariff import MAX_USAGE

MAX_ID_LENGTH = 256
MAX_QUOTAS = 16
MAX_REQUEST_NUMBER = 2**31
SERVICE_CONTEXTS = {"32260@3gpp.org": Service.VOICE, "32251@3gpp.org": Service.DATA, "32274@3gpp.org": Service.MESSAGE}
"""Service-Context-Id suffixes (``[ext.]MNC.MCC.release.`` may come before them) and the service each means."""
DEFAULT_REQUEST = {Service.VOICE: 300, Service.DATA: 10 * 1024 * 1024, Service.MESSAGE: 1}
"""Units asked for when a Requested-Service-Unit names none of its service's unit (the server chooses)."""
_KINDS = {RequestType.INITIAL: Kind.START, RequestType.UPDATE: Kind.UPDATE, RequestType.TERMINATE: Kind.END,
          RequestType.EVENT: Kind.EVENT}  # fmt: skip
_ACTIONS = {
    RequestedAction.DIRECT_DEBITING: Action.DIRECT_DEBIT,
    RequestedAction.REFUND_ACCOUNT: Action.REFUND_ACCOUNT,
    RequestedAction.CHECK_BALANCE: Action.CHECK_BALANCE,
    RequestedAction.PRICE_ENQUIRY: Action.PRICE_ENQUIRY,
}


class CreditRequest(msgspec.Struct, frozen=True):
    """A CCR as OCC acts on it.

    Attributes:
        request_type: CC-Request-Type.
        request_number: CC-Request-Number.
        origin_host: the client's Origin-Host (the owner of the session, for ASR and RAR).
        origin_realm: the client's Origin-Realm.
        work: what the engine is asked.
        identifiers: Service-Identifier per rating group, echoed in the answer's MSCC.
        from_mscc: the quota items came in MSCC (the answer puts them there too).
    """

    request_type: RequestType
    request_number: int
    origin_host: str
    origin_realm: str
    work: Work
    identifiers: dict[int, int] = {}
    from_mscc: bool = True


def read_ccr(avps: Avps, *, country_code: str, account_of_session: Callable[[str], str | None]) -> CreditRequest:
    """The request, or :class:`ProtocolError`; ``account_of_session`` names the account of a session OCC has seen
    (an UPDATE or TERMINATE may leave Subscription-Id out)."""
    avps.refuse_unknown_mandatory()
    session_id = _identifier(avps, c.AVP_SESSION_ID)
    origin_host = avps.identity(c.AVP_ORIGIN_HOST)
    origin_realm = avps.identity(c.AVP_ORIGIN_REALM)
    avps.text(c.AVP_DESTINATION_REALM, required=True)
    _credit_control_application(avps)
    service = _service(avps)
    request_type = _enum(avps, c.AVP_CC_REQUEST_TYPE, RequestType)
    number = _request_number(avps, request_type)
    kind = _KINDS[request_type]
    account = _account(avps, session_id, kind, account_of_session)
    calling, called = _parties(avps)
    destination = _destination(avps, called, country_code) if kind in (Kind.START, Kind.EVENT) else ""
    now_ms = int(time.time() * 1000)
    work = Work(kind, account, session_id=session_id, request_number=number,
                event_time_s=_event_time(avps, now_ms // 1000), now_ms=now_ms, calling=calling, called=called,
                destination=destination)  # fmt: skip
    quotas, identifiers, from_mscc = _quotas(avps, service, kind)
    if kind is Kind.EVENT:
        work = _event(avps, work, quotas, service)
    else:
        work = msgspec.structs.replace(work, quotas=tuple(quotas))
    return CreditRequest(request_type, number, origin_host, origin_realm, work, identifiers, from_mscc)


def _event_time(avps: Avps, now_s: int) -> int:
    """Event-Timestamp in Unix seconds (NTP seconds, RFC 2030's wrap past 2036 as python-diameter reads it), read
    from the AVP's bytes: going through a local-time ``datetime`` would be ambiguous in a DST change's hour."""
    avp = avps.one(c.AVP_EVENT_TIMESTAMP)
    if avp is None:
        return now_s
    if len(avp.payload) != 4:
        raise ProtocolError(Result.INVALID_AVP_VALUE, "Event-Timestamp must be 4 bytes", avp)
    seconds = int.from_bytes(avp.payload, "big")
    if seconds < AvpTime.overflow_detection_cutoff:
        return seconds + AvpTime.overflow_timestamp
    return seconds - AvpTime.seconds_since_1900


def account_of(kind: int, data: str) -> str:
    """The account id a Subscription-Id names: E.164 and IMSI → their digits (a leading ``+`` dropped); SIP URI →
    the user part (``sip:+4420…@ims.example;user=phone`` → ``4420…``, ``sip:alice@ims.example`` → ``alice``);
    NAI and private ids → as sent. ValueError when nothing is left."""
    text = data.strip()
    if kind == SubscriptionType.END_USER_SIP_URI:
        text = _user_part(text)
    if kind in (SubscriptionType.END_USER_E164, SubscriptionType.END_USER_IMSI, SubscriptionType.END_USER_SIP_URI):
        text = text.removeprefix("+")
    if kind in (SubscriptionType.END_USER_E164, SubscriptionType.END_USER_IMSI) and not text.isdigit():
        raise ValueError(f"{data!r} is not a string of digits")
    if not text or len(text) > MAX_ID_LENGTH or not text.isprintable():
        raise ValueError(f"{data!r} names no account")
    return text


def _user_part(uri: str) -> str:
    """``+4420…`` from ``sip:+4420…@host;user=phone`` or ``tel:+4420…;phone-context=…``."""
    for scheme in ("sip:", "sips:", "tel:"):
        if uri.lower().startswith(scheme):
            uri = uri[len(scheme) :]
            break
    return uri.split("@", 1)[0].split(";", 1)[0].split("?", 1)[0]


def _identifier(avps: Avps, code: int) -> str:
    value = avps.text(code, required=True)
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise ProtocolError(Result.INVALID_AVP_VALUE, f"{name_of(code)} must be 1–{MAX_ID_LENGTH} printable characters",
                            avps.one(code))  # fmt: skip
    return value


def _enum(avps: Avps, code: int, kind: type, *, default: int | None = None):
    value = avps.get(code, required=default is None, default=default)
    try:
        return kind(value)
    except ValueError:
        raise ProtocolError(Result.INVALID_AVP_VALUE, f"{name_of(code)} {value} is not one of "
                            f"{', '.join(str(int(v)) for v in kind)}", avps.one(code)) from None  # fmt: skip


def _service(avps: Avps) -> Service:
    context = avps.text(c.AVP_SERVICE_CONTEXT_ID, required=True)
    for suffix, service in SERVICE_CONTEXTS.items():
        if context.endswith(suffix):
            return service
    raise ProtocolError(Result.INVALID_AVP_VALUE, f"Service-Context-Id {context[:64]!r} is none of "
                        f"{', '.join(SERVICE_CONTEXTS)}", avps.one(c.AVP_SERVICE_CONTEXT_ID))  # fmt: skip


def _request_number(avps: Avps, request_type: RequestType) -> int:
    number = avps.get(c.AVP_CC_REQUEST_NUMBER, required=True)
    if request_type is RequestType.INITIAL:
        ok, rule = number == 0, "0 on INITIAL_REQUEST"
    elif request_type is RequestType.EVENT:
        ok, rule = 0 <= number < MAX_REQUEST_NUMBER, "0 or more on EVENT_REQUEST"
    else:
        ok, rule = 1 <= number < MAX_REQUEST_NUMBER, f"1 or more on {request_type.name}_REQUEST"
    if not ok:
        raise ProtocolError(Result.INVALID_AVP_VALUE, f"CC-Request-Number must be {rule} (got {number})",
                            avps.one(c.AVP_CC_REQUEST_NUMBER))  # fmt: skip
    return number


def _credit_control_application(avps: Avps) -> None:
    """Auth-Application-Id must be 4. Kamailio's ims_charging (like other 3GPP Ro clients) sends it only inside
    Vendor-Specific-Application-Id, so that one counts when the command-level AVP is absent."""
    avp = avps.one(c.AVP_AUTH_APPLICATION_ID)
    if avp is None:
        for _, vendor_specific in avps.groups(c.AVP_VENDOR_SPECIFIC_APPLICATION_ID)[:1]:
            avp = vendor_specific.one(c.AVP_AUTH_APPLICATION_ID)
    if avp is None:
        avps.one(c.AVP_AUTH_APPLICATION_ID, required=True)  # 5005, with an empty Auth-Application-Id as Failed-AVP
    if value_of(avp) != 4:
        raise ProtocolError(Result.INVALID_AVP_VALUE, "Auth-Application-Id must be 4 (credit control)", avp)


def _account(avps: Avps, session_id: str, kind: Kind, account_of_session: Callable[[str], str | None]) -> str:
    found = []
    for avp, group in avps.groups(c.AVP_SUBSCRIPTION_ID):
        kind_of = group.get(c.AVP_SUBSCRIPTION_ID_TYPE, required=True)
        data = group.text(c.AVP_SUBSCRIPTION_ID_DATA, required=True)
        try:
            found.append((int(SubscriptionType(kind_of)), account_of(kind_of, data), avp))
        except ValueError as error:
            raise ProtocolError(Result.INVALID_AVP_VALUE, f"Subscription-Id: {error}", avp) from None
    if found:
        return min(found, key=lambda item: item[0])[1]
    if kind in (Kind.UPDATE, Kind.END):
        known = account_of_session(session_id)
        if known is not None:
            return known
    raise ProtocolError(Result.MISSING_AVP, "Subscription-Id is missing", example_of(c.AVP_SUBSCRIPTION_ID))


def _parties(avps: Avps) -> tuple[str, str]:
    """(calling, called) as the client sent them (a SIP or tel URI, or a number)."""
    info = avps.group(c.AVP_TGPP_SERVICE_INFORMATION, TGPP_VENDOR, strict=False)
    if info is None:
        return "", ""
    ims = info.group(c.AVP_TGPP_IMS_INFORMATION, TGPP_VENDOR, strict=False)
    if ims is not None:
        return _first_text(ims, c.AVP_TGPP_CALLING_PARTY_ADDRESS), _first_text(ims, c.AVP_TGPP_CALLED_PARTY_ADDRESS)
    sms = info.group(c.AVP_TGPP_SMS_INFORMATION, TGPP_VENDOR, strict=False)
    if sms is None:
        return "", ""
    called = ""
    for _, recipient in sms.groups(c.AVP_TGPP_RECIPIENT_INFO, TGPP_VENDOR, strict=False)[:1]:
        for _, address in recipient.groups(c.AVP_TGPP_RECIPIENT_ADDRESS, TGPP_VENDOR, strict=False)[:1]:
            called = address.text(c.AVP_TGPP_ADDRESS_DATA, TGPP_VENDOR)
    originator = sms.group(c.AVP_TGPP_ORIGINATOR_RECEIVED_ADDRESS, TGPP_VENDOR, strict=False)
    calling = originator.text(c.AVP_TGPP_ADDRESS_DATA, TGPP_VENDOR) if originator else ""
    return calling, called


def _first_text(avps: Avps, code: int) -> str:
    found = avps.all(code, TGPP_VENDOR)
    if not found:
        return ""
    value = value_of(found[0])
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _destination(avps: Avps, called: str, country_code: str) -> str:
    if not called:
        return ""
    try:
        return normalize_number(_user_part(called), country_code)
    except ValueError as error:
        raise ProtocolError(Result.INVALID_AVP_VALUE, f"called party: {error}", _called_avp(avps)) from None


def _called_avp(avps: Avps):
    """The AVP that carried the called party (for Failed-AVP): Service-Information as a whole."""
    return avps.one(c.AVP_TGPP_SERVICE_INFORMATION, TGPP_VENDOR)


def units_in(units: Avps, service: Service) -> int | None:
    """The units of ``service`` in a Requested-, Used- or Granted-Service-Unit; None when it names none."""
    if service is Service.VOICE:
        codes = (c.AVP_CC_TIME,)
    elif service is Service.MESSAGE:
        codes = (c.AVP_CC_SERVICE_SPECIFIC_UNITS,)
    elif units.one(c.AVP_CC_TOTAL_OCTETS) is not None:
        codes = (c.AVP_CC_TOTAL_OCTETS,)
    else:
        codes = (c.AVP_CC_INPUT_OCTETS, c.AVP_CC_OUTPUT_OCTETS)
    values = [(code, units.get(code)) for code in codes]
    if all(value is None for _, value in values):
        return None
    for code, value in values:
        if value is not None and not 0 <= value <= MAX_USAGE:
            raise ProtocolError(Result.INVALID_AVP_VALUE, f"{name_of(code)} must be 0 to {MAX_USAGE} (got {value})",
                                units.one(code))  # fmt: skip
    return sum(value or 0 for _, value in values)


def _item(avps: Avps, service: Service, kind: Kind) -> tuple[int, int]:
    """(requested, used) of one MSCC (or of the command level)."""
    requested_units = avps.group(c.AVP_REQUESTED_SERVICE_UNIT)
    requested = 0
    if requested_units is not None and kind is not Kind.END:
        asked = units_in(requested_units, service)
        requested = DEFAULT_REQUEST[service] if asked is None else asked
    used = 0
    for avp, used_units in avps.groups(c.AVP_USED_SERVICE_UNIT):
        used += units_in(used_units, service) or 0
        if kind is Kind.START and used:
            raise ProtocolError(Result.INVALID_AVP_VALUE, "Used-Service-Unit on INITIAL_REQUEST: nothing is used yet",
                                avp)  # fmt: skip
    return requested, min(used, MAX_USAGE)


def _quotas(avps: Avps, service: Service, kind: Kind) -> tuple[list[Quota], dict[int, int], bool]:
    items = avps.groups(c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL)
    if len(items) > MAX_QUOTAS:
        raise ProtocolError(Result.AVP_OCCURS_TOO_MANY_TIMES, f"at most {MAX_QUOTAS} Multiple-Services-Credit-Control",
                            items[MAX_QUOTAS][0])  # fmt: skip
    quotas, identifiers = [], {}
    for avp, item in items:
        services = [value_of(a) for a in item.all(c.AVP_SERVICE_IDENTIFIER)]
        rating_group = item.get(c.AVP_RATING_GROUP, default=services[0] if services else 0)
        if any(quota.rating_group == rating_group for quota in quotas):
            raise ProtocolError(Result.INVALID_AVP_VALUE, f"rating group {rating_group} appears in two "
                                "Multiple-Services-Credit-Control", avp)  # fmt: skip
        if services:
            identifiers[rating_group] = services[0]
        quotas.append(Quota(rating_group, service, *_item(item, service, kind)))
    if items:
        return quotas, identifiers, True
    if avps.one(c.AVP_REQUESTED_SERVICE_UNIT) or avps.all(c.AVP_USED_SERVICE_UNIT):
        rating_group = avps.get(c.AVP_SERVICE_IDENTIFIER, default=0)
        return [Quota(rating_group, service, *_item(avps, service, kind))], {}, False
    if kind is Kind.START:
        raise ProtocolError(Result.MISSING_AVP, "Multiple-Services-Credit-Control is missing (at least one quota)",
                            example_of(c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL))  # fmt: skip
    return [], {}, True


def _event(avps: Avps, work: Work, quotas: list[Quota], service: Service) -> Work:
    action = _enum(avps, c.AVP_REQUESTED_ACTION, RequestedAction, default=RequestedAction.DIRECT_DEBITING)
    if len(quotas) > 1:
        raise ProtocolError(Result.AVP_OCCURS_TOO_MANY_TIMES, "an EVENT_REQUEST carries one quota item",
                            avps.all(c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL)[1])  # fmt: skip
    quota = quotas[0] if quotas else None
    units = (quota.requested or quota.used) if quota else 0
    if units < 1:
        raise ProtocolError(Result.MISSING_AVP, "an EVENT_REQUEST needs Requested-Service-Unit with units",
                            example_of(c.AVP_REQUESTED_SERVICE_UNIT))  # fmt: skip
    return msgspec.structs.replace(work, action=_ACTIONS[action], service=service,
                                   rating_group=quota.rating_group, units=units)  # fmt: skip

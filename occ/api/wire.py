"""Protobuf ↔ domain: validate what arrives on the wire into ``Work`` and render outcomes as answers.

Every rejection is an ``InvalidRequest`` naming the field (``quotas[1].used_units: must not be negative``); nothing is
written for a rejected request. :func:`check_lengths` is the one check of string lengths for both services: every
string a client sends has a limit in :data:`MAX_CHARS` (by field name), documented beside the field in
``proto/occ/v1/*.proto``; an error quotes at most a short prefix of what was sent (``occ.core.errors.quoted``).
"""

from __future__ import annotations

import functools
import time

import msgspec
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from occ.core.errors import InvalidRequest, quoted
from occ.core.requests import (
    Action,
    AuthorizeOutcome,
    BalanceOutcome,
    EventOutcome,
    Kind,
    Quota,
    SessionOutcome,
    Work,
)
from occ.v1 import charging_pb2 as pb
from rating_engine import Service, normalize_number
from rating_engine.tariff import MAX_USAGE

MAX_ID_LENGTH = 256
MAX_CHARS: dict[str, int] = {
    "session_id": MAX_ID_LENGTH,
    "subscriber": MAX_ID_LENGTH,
    "id": MAX_ID_LENGTH,
    "account_id": MAX_ID_LENGTH,
    "idempotency_key": MAX_ID_LENGTH,
    "calling_party": 256,
    "called_party": 256,
    "currency": 3,
    "tariff_plan": 64,
    "tax_profile": 64,
    "tax_code": 20,
    "description": 1024,
    "reason": 256,
    "directory": 1024,
    "prefix": MAX_ID_LENGTH,
    "page_token": MAX_ID_LENGTH,
}
"""Most characters of every string field of a request, by field name (the same name means the same thing in every
message). A string field missing here fails :func:`check_lengths` loudly, so a new field cannot go unchecked."""
MAX_QUOTAS = 16
MAX_REQUEST_NUMBER = 2**31
_SERVICES = {pb.VOICE: Service.VOICE, pb.DATA: Service.DATA, pb.MESSAGE: Service.MESSAGE}
_ACTIONS = {
    pb.DIRECT_DEBIT: Action.DIRECT_DEBIT,
    pb.REFUND_ACCOUNT: Action.REFUND_ACCOUNT,
    pb.CHECK_BALANCE: Action.CHECK_BALANCE,
    pb.PRICE_ENQUIRY: Action.PRICE_ENQUIRY,
}


def check_lengths(message: Message, prefix: str = "") -> None:
    """Raise ``InvalidRequest`` naming the first string field of ``message`` (nested messages included) longer than
    its limit in :data:`MAX_CHARS`."""
    for name, limit, nested in _string_fields(message.DESCRIPTOR):
        value = getattr(message, name)
        if nested is None:
            if len(value) > limit:
                raise InvalidRequest(f"{prefix}{name}", f"must be at most {limit} characters, got {quoted(value)}")
        elif nested == "repeated":
            for index, item in enumerate(value):
                check_lengths(item, f"{prefix}{name}[{index}].")
        elif message.HasField(name):
            check_lengths(value, f"{prefix}{name}.")


@functools.cache
def _string_fields(descriptor: Descriptor) -> tuple[tuple[str, int, str | None], ...]:
    """(name, limit, None) per string field and (name, 0, "one" | "repeated") per message field holding strings."""
    found: list[tuple[str, int, str | None]] = []
    for field in descriptor.fields:
        repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            continue  # a map's keys are checked by its owner (LoadTariff's files: tariff file names only)
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.name not in MAX_CHARS or repeated:
                raise AssertionError(f"{field.full_name}: a string field with no length limit in wire.MAX_CHARS")
            found.append((field.name, MAX_CHARS[field.name], None))
        elif field.type == FieldDescriptor.TYPE_MESSAGE and _string_fields(field.message_type):
            found.append((field.name, 0, "repeated" if repeated else "one"))
    return tuple(found)


def _id(field: str, value: str) -> str:
    if not value:
        raise InvalidRequest(field, "is required")
    if len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise InvalidRequest(field, f"must be at most {MAX_ID_LENGTH} printable characters")
    return value


def _service(field: str, value: int) -> Service:
    try:
        return _SERVICES[value]
    except KeyError:
        raise InvalidRequest(field, f"unknown or missing service {value} (VOICE, DATA or MESSAGE)") from None


def _cap(field: str, value: int) -> int:
    """A cap may be as large as it likes (the engine never grants beyond the usage limit), but not negative."""
    if value < 0:
        raise InvalidRequest(field, f"must not be negative (got {value})")
    return value


def _units(field: str, value: int) -> int:
    if not 0 <= value <= MAX_USAGE:
        raise InvalidRequest(field, f"must be 0 to {MAX_USAGE} (got {value})")
    return value


def _times(message, now_ms: int) -> int:
    """The event time in Unix seconds (now when the client did not set one)."""
    if message.HasField("event_time"):
        return message.event_time.seconds
    return now_ms // 1000


def _destination(called: str, country_code: str) -> str:
    if not called:
        return ""
    try:
        return normalize_number(called, country_code)
    except ValueError as exc:
        raise InvalidRequest("called_party", str(exc).replace(repr(called), quoted(called))) from None


def session_work(kind: Kind, message: pb.SessionRequest, country_code: str) -> Work:
    now_ms = int(time.time() * 1000)
    session_id = _id("session_id", message.session_id)
    subscriber = _id("subscriber", message.subscriber)
    number = message.request_number
    if kind is Kind.START and number != 0:
        raise InvalidRequest("request_number", f"must be 0 on start (got {number})")
    if kind is not Kind.START and not 1 <= number < MAX_REQUEST_NUMBER:
        raise InvalidRequest("request_number", f"must be 1 or more on {kind.value} (got {number})")
    if kind is Kind.START and not message.quotas:
        raise InvalidRequest("quotas", "at least one quota item is required on start")
    if len(message.quotas) > MAX_QUOTAS:
        raise InvalidRequest("quotas", f"at most {MAX_QUOTAS} quota items")
    quotas, seen = [], set()
    for i, item in enumerate(message.quotas):
        field = f"quotas[{i}]"
        if item.rating_group in seen:
            raise InvalidRequest(f"{field}.rating_group", f"rating group {item.rating_group} appears twice")
        seen.add(item.rating_group)
        used = _units(f"{field}.used_units", item.used_units)
        if kind is Kind.START and used:
            raise InvalidRequest(f"{field}.used_units", "must be 0 on start: nothing has been used yet")
        requested = _units(f"{field}.requested_units", item.requested_units)
        quotas.append(Quota(item.rating_group, _service(f"{field}.service", item.service), requested, used))
    return Work(
        kind,
        subscriber,
        session_id=session_id,
        request_number=number,
        event_time_s=_times(message, now_ms),
        now_ms=now_ms,
        calling=message.calling_party,
        called=message.called_party,
        destination=_destination(message.called_party, country_code) if kind is Kind.START else "",
        quotas=tuple(quotas),
    )


def event_work(message: pb.EventRequest, country_code: str) -> Work:
    now_ms = int(time.time() * 1000)
    if message.action not in _ACTIONS:
        raise InvalidRequest("action", f"unknown or missing action {message.action}")
    if message.units < 1:
        raise InvalidRequest("units", f"must be 1 or more (got {message.units})")
    return Work(
        Kind.EVENT,
        _id("subscriber", message.subscriber),
        session_id=_id("session_id", message.session_id),
        request_number=message.request_number,
        event_time_s=_times(message, now_ms),
        now_ms=now_ms,
        calling=message.calling_party,
        called=message.called_party,
        destination=_destination(message.called_party, country_code),
        action=_ACTIONS[message.action],
        service=_service("service", message.service),
        rating_group=message.rating_group,
        units=message.units,
    )


def authorize_work(message: pb.AuthorizeRequest, country_code: str) -> Work:
    now_ms = int(time.time() * 1000)
    return Work(
        Kind.AUTHORIZE,
        _id("subscriber", message.subscriber),
        event_time_s=_times(message, now_ms),
        now_ms=now_ms,
        calling=message.calling_party,
        called=message.called_party,
        destination=_destination(message.called_party, country_code),
        service=_service("service", message.service),
        units=_cap("max_units", message.max_units),
    )


def balance_work(message: pb.BalanceRequest) -> Work:
    return Work(Kind.BALANCE, _id("subscriber", message.subscriber))


def session_answer(message: pb.SessionRequest, outcome: SessionOutcome, validity_time_s: int) -> pb.SessionAnswer:
    answer = pb.SessionAnswer(
        session_id=message.session_id,
        request_number=message.request_number,
        result_code=outcome.code,
        cost_micros=outcome.session_cost_micros,
        balance_micros=outcome.balance_micros,
        available_micros=outcome.available_micros,
        currency=outcome.currency,
        reason=outcome.reason,
        validity_time_s=validity_time_s if outcome.code == 2001 else 0,
    )
    for quota in outcome.quotas:
        item = answer.quotas.add(
            rating_group=quota.rating_group,
            result_code=quota.code,
            granted_units=quota.granted,
            validity_time_s=validity_time_s if quota.granted else 0,
            used_units_total=quota.used_total,
            cost_micros=quota.cost_micros,
            overused_units=quota.overused,
            reason=quota.reason,
        )
        if quota.final_unit:
            item.final_unit.action = pb.TERMINATE
    return answer


def _answer(message_type, outcome):
    """An answer message from an outcome whose fields carry the message's names (``code`` is ``result_code``)."""
    fields = msgspec.structs.asdict(outcome)
    fields["result_code"] = fields.pop("code")
    return message_type(**fields)


def event_answer(outcome: EventOutcome) -> pb.EventAnswer:
    return _answer(pb.EventAnswer, outcome)


def authorize_answer(outcome: AuthorizeOutcome) -> pb.AuthorizeAnswer:
    return _answer(pb.AuthorizeAnswer, outcome)


def balance_answer(outcome: BalanceOutcome) -> pb.BalanceAnswer:
    return _answer(pb.BalanceAnswer, outcome)

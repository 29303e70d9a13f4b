"""Validated requests and their outcomes, independent of protobuf (``wire.py`` maps both to and from the wire).

Result codes are Diameter's (RFC 8506): 2001 success, 3004 too busy, 4010 service denied (blocked), 4012 credit
limit reached, 5002 unknown session, 5030 unknown user, 5031 rating failed.
"""

from __future__ import annotations

import enum

import msgspec

from rating_engine import Service


class Code(enum.IntEnum):
    SUCCESS = 2001
    TOO_BUSY = 3004
    END_USER_SERVICE_DENIED = 4010
    CREDIT_CONTROL_NOT_APPLICABLE = 4011
    CREDIT_LIMIT_REACHED = 4012
    UNKNOWN_SESSION_ID = 5002
    USER_UNKNOWN = 5030
    RATING_FAILED = 5031


class Kind(enum.Enum):
    AUTHORIZE = "authorize"
    START = "start"
    UPDATE = "update"
    END = "end"
    EVENT = "event"
    BALANCE = "balance"


class Action(enum.Enum):
    DIRECT_DEBIT = "DIRECT_DEBIT"
    REFUND_ACCOUNT = "REFUND_ACCOUNT"
    CHECK_BALANCE = "CHECK_BALANCE"
    PRICE_ENQUIRY = "PRICE_ENQUIRY"


class Quota(msgspec.Struct, frozen=True):
    """One quota item of a session request.

    Attributes:
        rating_group: the rating group.
        service: what is rated (fixes the unit).
        requested: units wanted next (0: report usage only).
        used: units used since the previous report of this rating group.
    """

    rating_group: int
    service: Service
    requested: int
    used: int


class Work(msgspec.Struct):
    """A validated charging request.

    Attributes:
        kind: which request it is.
        subscriber: the account id.
        session_id: the session (or event) id; "" for authorize and balance requests.
        request_number: Diameter CC-Request-Number (-1 where none).
        event_time_s: when usage began (start, event, authorize), Unix seconds.
        now_ms: when OCC received the request, Unix ms.
        calling: calling party as presented.
        called: called party as dialled.
        destination: the called party normalised for rating ("" for none).
        quotas: session quota items.
        action: event action.
        service: event and authorize service.
        rating_group: event rating group.
        units: event units; authorize cap (0: the default cap).
    """

    kind: Kind
    subscriber: str
    session_id: str = ""
    request_number: int = -1
    event_time_s: int = 0
    now_ms: int = 0
    calling: str = ""
    called: str = ""
    destination: str = ""
    quotas: tuple[Quota, ...] = ()
    action: Action | None = None
    service: Service = Service.VOICE
    rating_group: int = 0
    units: int = 0


class QuotaOutcome(msgspec.Struct, array_like=True):
    """The answer for one quota item (array-like: it is also the stored answer's layout in ``session.lua``)."""

    rating_group: int
    code: int
    granted: int
    used_total: int
    cost_micros: int
    overused: int
    final_unit: int  # 0: none, 1: TERMINATE
    reason: str


class SessionOutcome(msgspec.Struct, array_like=True):
    """The answer for a session request, as ``session.lua`` stores it (plus currency and reason at the edge)."""

    code: int
    balance_micros: int
    available_micros: int
    session_cost_micros: int
    quotas: list[QuotaOutcome]
    currency: str = ""
    reason: str = ""


class EventOutcome(msgspec.Struct, array_like=True):
    code: int
    cost_micros: int
    enough_credit: bool
    balance_micros: int
    available_micros: int
    currency: str = ""
    reason: str = ""


class AuthorizeOutcome(msgspec.Struct):
    code: int
    max_units: int = 0
    cost_micros: int = 0
    balance_micros: int = 0
    available_micros: int = 0
    currency: str = ""
    destination_group: str = ""
    reason: str = ""


class BalanceOutcome(msgspec.Struct):
    code: int
    balance_micros: int = 0
    credit_limit_micros: int = 0
    reserved_micros: int = 0
    available_micros: int = 0
    currency: str = ""


Outcome = SessionOutcome | EventOutcome | AuthorizeOutcome | BalanceOutcome

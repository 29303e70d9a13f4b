"""What is rated: one call or event, and the answer for it."""

from __future__ import annotations

import enum

import msgspec

from rating_engine.tariff import Service

EARLIEST_START = 946_684_800  # 2000-01-01T00:00:00Z
LATEST_START = 4_102_444_800  # 2100-01-01T00:00:00Z


class Call(msgspec.Struct, frozen=True):
    """A call or event to rate.

    Attributes:
        plan: the tariff plan of the account.
        service: voice, data or message.
        destination: the normalised called number (see ``numbers.normalize_number``); "" when there is none.
        start: when usage began, Unix seconds (UTC).
        usage: seconds, octets or messages used.
    """

    plan: str
    service: Service
    destination: str
    start: int
    usage: int


class Failure(enum.IntEnum):
    """Why a call could not be rated (``NONE`` when it was)."""

    NONE = 0
    UNKNOWN_DESTINATION = 1
    UNKNOWN_PLAN = 2
    NO_RATE = 3
    BAD_USAGE = 4
    BAD_START = 5


class Rated(msgspec.Struct, frozen=True):
    """A rated call.

    Attributes:
        cost_micros: the price, in micro-units of the tariff's currency.
        group: the destination group ("" when the call had no called number).
        ledger_code: the ledger account the charge posts to.
        rate: the rate in force at the start of the call.
    """

    cost_micros: int
    group: str
    ledger_code: int
    rate: str


class RatingFailed(Exception):
    """The call cannot be priced; ``reason`` says why. A failure is never a zero price."""

    def __init__(self, failure: Failure, reason: str) -> None:
        super().__init__(reason)
        self.failure, self.reason = failure, reason

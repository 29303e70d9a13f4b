"""Diameter numbers OCC uses (command codes, application, result codes, enumerations) and the error a request is
answered with when it breaks the base protocol.

AVP codes come from python-diameter's ``diameter.message.constants``; this module names only what that module
does not, or names differently.
"""

from __future__ import annotations

import enum

from diameter.message import Avp

CREDIT_CONTROL_APP = 4
RELAY_APP = 0xFFFFFFFF
TGPP_VENDOR = 10415
OCC_VENDOR_ID = 0  # no IANA enterprise number of its own
PRODUCT_NAME = "OCC"


class Command(enum.IntEnum):
    CAPABILITIES_EXCHANGE = 257
    RE_AUTH = 258
    CREDIT_CONTROL = 272
    ABORT_SESSION = 274
    DEVICE_WATCHDOG = 280
    DISCONNECT_PEER = 282


_LABELS = {Command.CAPABILITIES_EXCHANGE: "CE", Command.RE_AUTH: "RA", Command.CREDIT_CONTROL: "CC",
           Command.ABORT_SESSION: "AS", Command.DEVICE_WATCHDOG: "DW", Command.DISCONNECT_PEER: "DP"}  # fmt: skip


def command_label(code: int) -> str:
    """The metrics label of a command: its short name, or ``other`` for one OCC does not serve (a peer sending
    random codes cannot grow the label set)."""
    return _LABELS.get(code, "other")


class Result(enum.IntEnum):
    """Result-Code values (RFC 6733 §7.1, RFC 8506 §9)."""

    SUCCESS = 2001
    COMMAND_UNSUPPORTED = 3001
    TOO_BUSY = 3004
    APPLICATION_UNSUPPORTED = 3007
    INVALID_HDR_BITS = 3008
    UNKNOWN_PEER = 3010
    END_USER_SERVICE_DENIED = 4010
    CREDIT_CONTROL_NOT_APPLICABLE = 4011
    CREDIT_LIMIT_REACHED = 4012
    AVP_UNSUPPORTED = 5001
    UNKNOWN_SESSION_ID = 5002
    INVALID_AVP_VALUE = 5004
    MISSING_AVP = 5005
    AVP_OCCURS_TOO_MANY_TIMES = 5009
    NO_COMMON_APPLICATION = 5010
    UNABLE_TO_COMPLY = 5012
    INVALID_AVP_LENGTH = 5014
    USER_UNKNOWN = 5030
    RATING_FAILED = 5031


def is_protocol_error(code: int) -> bool:
    """3xxx answers carry the E bit (RFC 6733 §7.1.3)."""
    return 3000 <= code < 4000


class RequestType(enum.IntEnum):
    INITIAL = 1
    UPDATE = 2
    TERMINATE = 3
    EVENT = 4


class RequestedAction(enum.IntEnum):
    DIRECT_DEBITING = 0
    REFUND_ACCOUNT = 1
    CHECK_BALANCE = 2
    PRICE_ENQUIRY = 3


class SubscriptionType(enum.IntEnum):
    END_USER_E164 = 0
    END_USER_IMSI = 1
    END_USER_SIP_URI = 2
    END_USER_NAI = 3
    END_USER_PRIVATE = 4


FINAL_UNIT_TERMINATE = 0
CHECK_BALANCE_ENOUGH, CHECK_BALANCE_NO_CREDIT = 0, 1
REAUTH_AUTHORIZE_ONLY = 0
DISCONNECT_REBOOTING = 0


class ProtocolError(Exception):
    """A request OCC answers with a base-protocol or credit-control error instead of acting on it; nothing is charged.

    Attributes:
        result_code: the Result-Code of the answer.
        failed: the AVP at fault (copied into Failed-AVP), or None.
        message: Error-Message text (names the AVP).
    """

    def __init__(self, result_code: int, message: str, failed: Avp | None = None) -> None:
        super().__init__(f"{result_code}: {message}")
        self.result_code, self.message, self.failed = result_code, message, failed

"""OCC's errors at the gRPC edge: the table of ``occ.core.errors`` turned into status codes, for every servicer.

Unary methods abort with the status and ``str(error)`` (``"<field>: <message>"``); ``Stream`` answers the request
with a ``StreamError`` carrying the same status and message and goes on. An exception outside the table (a bug)
becomes INTERNAL with a short message naming only its type: never UNKNOWN, never the exception's own text. Details
are cut to ``MAX_DETAILS_CHARS`` whatever raised them (gRPC refuses metadata past a few KiB).
"""

from __future__ import annotations

import grpc

from occ.core.errors import OccError, as_occ_error, rule_of

MAX_DETAILS_CHARS = 512


def grpc_status(error: BaseException) -> grpc.StatusCode | None:
    """The status ``error`` becomes, or None for an error that is not in the table (a failure, not a refusal)."""
    rule = rule_of(error)
    return None if rule is None else grpc.StatusCode[rule.grpc_status]


def status_and_details(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """What a call that failed with ``error`` answers: its table status and message, or INTERNAL for a bug."""
    known = as_occ_error(error)
    if known is None:
        return grpc.StatusCode.INTERNAL, f"internal error ({type(error).__name__}); the server log has the details"
    status = grpc_status(known)
    assert status is not None, "every OccError has a row in occ.core.errors.ERRORS"
    return status, clipped(str(known))


def clipped(details: str) -> str:
    """``details`` cut to ``MAX_DETAILS_CHARS``."""
    return details if len(details) <= MAX_DETAILS_CHARS else details[: MAX_DETAILS_CHARS - 1] + "…"


async def abort(context: grpc.aio.ServicerContext, error: OccError) -> None:
    """End a unary call with the status of ``error`` (raises, as ``context.abort`` does)."""
    status, details = status_and_details(error)
    await context.abort(status, details)

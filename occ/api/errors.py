"""OCC's errors at the gRPC edge: the table of ``occ.core.errors`` turned into status codes, for every servicer.

Unary methods abort with the status and ``str(error)`` (``"<field>: <message>"``); ``Stream`` answers the request
with a ``StreamError`` carrying the same status and message and goes on.
"""

from __future__ import annotations

import grpc

from occ.core.errors import OccError, rule_of


def grpc_status(error: BaseException) -> grpc.StatusCode | None:
    """The status ``error`` becomes, or None for an error that is not in the table (a failure, not a refusal)."""
    rule = rule_of(error)
    return None if rule is None else grpc.StatusCode[rule.grpc_status]


async def abort(context: grpc.aio.ServicerContext, error: OccError) -> None:
    """End a unary call with the status of ``error`` (raises, as ``context.abort`` does)."""
    status = grpc_status(error)
    assert status is not None, "every OccError has a row in occ.core.errors.ERRORS"
    await context.abort(status, str(error))

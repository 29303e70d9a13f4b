"""Every error OCC raises on purpose, and the one table that says what each becomes at the edge.

Telecom outcomes (4010, 4012, 5002, 5030, 5031, 3004 …) are not errors: they are result codes in an answer
(``occ.core.requests.Code``). The errors here are requests OCC refuses to act on; each is raised with a message
that names the field at fault (``str(error)`` is ``"<field>: <message>"``), and nothing is written before it.

| code | class | gRPC status | retriable |
|---|---|---|---|
| ``invalid_argument`` | :class:`InvalidRequest` | INVALID_ARGUMENT | no |
| ``not_found`` | :class:`NotFound` | NOT_FOUND | no |
| ``already_exists`` | :class:`AlreadyExists` | ALREADY_EXISTS | no |
| ``failed_precondition`` | :class:`FailedPrecondition` | FAILED_PRECONDITION | no |
| ``no_tariff`` | :class:`NoTariff` | FAILED_PRECONDITION | yes |
| ``currency_change`` | :class:`CurrencyChange` | FAILED_PRECONDITION | no |
| ``unauthenticated`` | :class:`Unauthenticated` | UNAUTHENTICATED | no |
| ``permission_denied`` | :class:`PermissionDenied` | PERMISSION_DENIED | no |
| ``unavailable`` | :class:`StoreUnavailable` (and redis-py's ConnectionError, TimeoutError) | UNAVAILABLE | yes |

A write that fewer replicas than ``min_replicas_acked`` confirmed in time (``occ.store.replication.NotReplicated``)
is :class:`StoreUnavailable` too: the same request again is safe (idempotent) and may succeed.

"Retriable" says whether the same request may succeed later unchanged. Anything else that escapes is a bug, not in
the table: the edge answers it INTERNAL with a short message (``occ.api.guard``), never with the exception's text.
The gRPC status is kept as its name so that this package imports no gRPC; ``occ.api.errors`` turns it into one.
Error messages quote what the client sent through :func:`quoted`, so an error never echoes unbounded input.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from occ.store.replication import NotReplicated

QUOTE_CHARS = 64
"""Most characters of a client's value an error message quotes."""


def quoted(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of ``value`` (a string as sent), cut to its first ``limit`` characters with ``…`` when longer."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


class OccError(Exception):
    """Base of the errors of the table; ``code`` keys :data:`ERRORS`.

    Attributes:
        field: the request field at fault ("" when none is).
        message: what is wrong with it.
    """

    code: ClassVar[str]

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message = field, message


class InvalidRequest(OccError, ValueError):
    """Bad input; ``field`` names the offending field (``quotas[1].used_units``)."""

    code = "invalid_argument"


class NotFound(OccError):
    """What the request names does not exist (an account, a directory)."""

    code = "not_found"


class AlreadyExists(OccError):
    """What the request would create exists already (an account id)."""

    code = "already_exists"


class FailedPrecondition(OccError):
    """A valid request the state refuses: an idempotency key used for another movement, a balance that would leave the
    exact range, a tariff in another currency than the current one."""

    code = "failed_precondition"


class NoTariff(OccError):
    """No tariff has been loaded yet, or the version a session needs is not in Redis."""

    code = "no_tariff"

    def __init__(self, message: str) -> None:
        super().__init__("", message)


class CurrencyChange(OccError):
    """A new tariff in another currency than the current one: it would price existing accounts in the wrong money."""

    code = "currency_change"

    def __init__(self, message: str) -> None:
        super().__init__("", message)


class Unauthenticated(OccError):
    """An Admin call without credentials OCC recognises (no token, an unknown or revoked token)."""

    code = "unauthenticated"


class PermissionDenied(OccError):
    """An Admin call by a known caller whose role may not call that method (``occ.api.roles``)."""

    code = "permission_denied"


class StoreUnavailable(OccError):
    """The online store (Redis) cannot be reached or did not answer in time, or could not take a write durably now
    (fewer replicas than ``min_replicas_acked`` confirmed it in time). Retriable: a repeated request is answered from
    what was stored, never charged twice."""

    code = "unavailable"

    def __init__(self, message: str = "the charging store is unavailable; retry later") -> None:
        super().__init__("", message)


def from_store(error: BaseException) -> BaseException:
    """A store failure that OCC reports on purpose as the error of the table (:class:`NotReplicated` becomes
    :class:`StoreUnavailable`, with its count of replicas); any other error as it is."""
    if isinstance(error, NotReplicated):
        return StoreUnavailable(str(error))
    return error


class Rule(NamedTuple):
    """A row of the table: the class raised, the gRPC status it becomes, whether a retry may succeed."""

    error: type[OccError]
    grpc_status: str
    retriable: bool


ERRORS: dict[str, Rule] = {
    rule.error.code: rule
    for rule in (
        Rule(InvalidRequest, "INVALID_ARGUMENT", retriable=False),
        Rule(NotFound, "NOT_FOUND", retriable=False),
        Rule(AlreadyExists, "ALREADY_EXISTS", retriable=False),
        Rule(FailedPrecondition, "FAILED_PRECONDITION", retriable=False),
        Rule(NoTariff, "FAILED_PRECONDITION", retriable=True),
        Rule(CurrencyChange, "FAILED_PRECONDITION", retriable=False),
        Rule(Unauthenticated, "UNAUTHENTICATED", retriable=False),
        Rule(PermissionDenied, "PERMISSION_DENIED", retriable=False),
        Rule(StoreUnavailable, "UNAVAILABLE", retriable=True),
    )
}
UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError)
"""Errors of the Redis client that mean "the store is not there right now" (``BusyLoadingError``, while a restarted
Redis replays its AOF, is a ``ConnectionError``)."""


def as_occ_error(error: BaseException) -> OccError | None:
    """``error`` as an error of the table (a Redis outage or a write too few replicas confirmed becomes
    :class:`StoreUnavailable`), or None for a bug."""
    error = from_store(error)
    if isinstance(error, OccError):
        return error
    if isinstance(error, UNAVAILABLE_ERRORS):
        return StoreUnavailable()
    return None


def rule_of(error: BaseException) -> Rule | None:
    """The table's row for ``error``, or None for an error OCC did not raise on purpose."""
    known = as_occ_error(error)
    return None if known is None else ERRORS[known.code]

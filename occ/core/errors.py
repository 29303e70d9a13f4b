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

"Retriable" says whether the same request may succeed later unchanged. Anything else that escapes (Redis down, a
bug) is not in the table: a unary call fails with UNKNOWN, a ``Stream`` request is answered UNAVAILABLE.
The gRPC status is kept as its name so that this package imports no gRPC; ``occ.api.errors`` turns it into one.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple


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
    )
}


def rule_of(error: BaseException) -> Rule | None:
    """The table's row for ``error``, or None for an error OCC did not raise on purpose."""
    return ERRORS.get(error.code) if isinstance(error, OccError) else None

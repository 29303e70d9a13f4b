"""Late items: an xDR that reaches billing after the period it belongs to was invoiced. Pure.

An item belongs to the billing period (in the account's time zone) that contains its start, ``start_ms``: for a call
or an event the moment it began as the switch reported it (it was priced at that moment), for a money movement or a
tax the moment it happened. An invoice for ``[start, end)`` takes every open BILLABLE item of the account starting
before ``end``, so an item of an earlier period (settled, or restored from an exception, after that period was
invoiced) goes on the next invoice instead of being lost. It is then *late*, never silently: the issuing transaction
records on the xDR the period it belonged to (``late_period_start_ms``, ``late_period_end_ms``), the statement bills
it on a line of its own and counts it in the invoice's ``late_items``.

Corrections after re-rating (revision > 0) are never late: going on the next invoice, as CORRECTION lines, is what
they are for.
"""

from __future__ import annotations

from collections.abc import Sequence

from settlement.billing.cycle import cycle_start, next_boundary

Period = tuple[int, int]
"""``[start_ms, end_ms)`` of a billing period."""


def is_late(start_ms: int, revision: int, period_start_ms: int) -> bool:
    """Whether an item (its start and revision) billed in a period starting at ``period_start_ms`` belongs to an
    earlier one, already invoiced."""
    return start_ms < period_start_ms and revision == 0


def own_period(start_ms: int, invoiced: Sequence[Period], *, billing_day: int, timezone: str) -> Period:
    """The period an item starting at ``start_ms`` belonged to: the invoiced period containing it, or, for an item
    older than the account's first invoice, the regular billing-cycle period containing it."""
    for begin, end in invoiced:
        if begin <= start_ms < end:
            return begin, end
    begin = cycle_start(start_ms, billing_day, timezone)
    return begin, next_boundary(begin, billing_day, timezone)

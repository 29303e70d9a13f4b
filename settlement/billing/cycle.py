"""Billing cycles: monthly, starting at local midnight of the account's billing day (1–28) in its time zone.

A period is ``[start_ms, end_ms)`` in Unix milliseconds. A regular period runs from one billing-day midnight to the
next; an out-of-turn invoice ends a period early (at "now"), and the next period runs from there to the next
billing-day midnight.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class CycleError(ValueError):
    """A billing day or time zone that cannot be used; the message names it."""


@cache
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CycleError(f"timezone {name!r} is not a known IANA time zone") from None


def check_billing_day(day: int) -> int:
    if not 1 <= day <= 28:
        raise CycleError(f"billing day must be 1 to 28 (every month has it), got {day}")
    return day


def _midnight_ms(year: int, month: int, day: int, tz: str) -> int:
    return int(datetime(year, month, day, tzinfo=zone(tz)).timestamp() * 1000)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def cycle_start(t_ms: int, day: int, tz: str) -> int:
    """The latest billing-day midnight at or before ``t_ms``."""
    local = datetime.fromtimestamp(t_ms / 1000, zone(tz))
    year, month = local.year, local.month
    start = _midnight_ms(year, month, day, tz)
    if start > t_ms:
        year, month = _add_months(year, month, -1)
        start = _midnight_ms(year, month, day, tz)
    return start


def next_boundary(t_ms: int, day: int, tz: str) -> int:
    """The earliest billing-day midnight strictly after ``t_ms``."""
    local = datetime.fromtimestamp(t_ms / 1000, zone(tz))
    year, month = local.year, local.month
    for step in range(3):
        y, m = _add_months(year, month, step)
        boundary = _midnight_ms(y, m, day, tz)
        if boundary > t_ms:
            return boundary
    raise AssertionError("unreachable: a billing day comes every month")


def local_midnight_ms(day: date, tz: str) -> int:
    """Midnight at the start of ``day`` in ``tz``."""
    return _midnight_ms(day.year, day.month, day.day, tz)


def local_date(t_ms: int, tz: str) -> date:
    return datetime.fromtimestamp(t_ms / 1000, zone(tz)).date()


def last_day(end_ms: int, tz: str) -> date:
    """The last local day a period ending at ``end_ms`` covers (inclusive end date for documents)."""
    return local_date(end_ms - 1, tz)


def describe(start_ms: int, end_ms: int, tz: str) -> str:
    """``2026-01-01 – 2026-01-31`` for people."""
    return f"{local_date(start_ms, tz).isoformat()} – {last_day(end_ms, tz).isoformat()}"


DUE_AFTER = timedelta(days=14)

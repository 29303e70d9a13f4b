"""Money as integer micro-units (10^-6 of the currency's major unit).

Every amount in the rating core is a Python ``int`` or an ``int64`` NumPy array of micro-units. This module is the
one place where decimal text becomes micro-units and back; nothing here ever touches a float.
"""

from __future__ import annotations

import re

MICROS_PER_UNIT = 1_000_000
MAX_EXACT_MICROS = 2**53 - 1
"""The largest amount (in size) OCC stores: balances, limits and movements stay exact in Redis Lua's doubles."""

_AMOUNT = re.compile(r"^(?P<sign>-?)(?P<whole>[0-9]+)(?:\.(?P<frac>[0-9]{1,6}))?$")  # ASCII digits only


def parse_micros(text: str) -> int:
    """Parse a decimal amount such as ``"0.05"`` or ``"12"`` into micro-units.

    At most six decimals are accepted: a seventh would be a fraction of a micro-unit, which OCC never stores.
    Raises ``ValueError`` with a message fit for a validation report.
    """
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a decimal amount with at most 6 decimals (e.g. 0.05)")
    frac = (match["frac"] or "").ljust(6, "0")
    micros = int(match["whole"]) * MICROS_PER_UNIT + int(frac)
    return -micros if match["sign"] else micros


def format_micros(micros: int) -> str:
    """Render micro-units as a decimal string with six decimals: ``300834`` → ``"0.300834"``."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(int(micros)), MICROS_PER_UNIT)
    return f"{sign}{whole}.{frac:06d}"


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding towards +infinity (for non-negative inputs: rounding up)."""
    return -(-numerator // denominator)

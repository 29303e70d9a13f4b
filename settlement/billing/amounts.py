"""The one place where micro-units become Decimal amounts and are rounded to a currency (ISO 4217, ROUND_HALF_UP).

Billing sums and multiplies in exact :class:`~decimal.Decimal` (never floats) and rounds once, explicitly, with
:func:`round_to_currency`; stored amounts go back to ``int`` micro-units with :func:`to_micros`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache

from babel.numbers import get_currency_precision

MICROS_PER_UNIT = 1_000_000
PPM = Decimal(1_000_000)


def D(micros: int) -> Decimal:
    """Micro-units as an exact Decimal amount in major units (``300834`` → ``Decimal('0.300834')``)."""
    return Decimal(micros).scaleb(-6)


@cache
def exponent(currency: str) -> int:
    """The currency's ISO 4217 minor-unit exponent (EUR 2, JPY 0, BHD 3)."""
    return get_currency_precision(currency)


@cache
def quantum(currency: str) -> Decimal:
    """The currency's smallest amount, ``Decimal('0.01')`` for EUR."""
    return Decimal(1).scaleb(-exponent(currency))


def round_to_currency(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half up (away from zero on ties) to the currency's exponent."""
    with localcontext() as context:
        context.prec = 40
        return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def to_micros(amount: Decimal) -> int:
    """An amount with at most 6 decimals as int micro-units; raises if it has more (it must be rounded first)."""
    micros = amount.scaleb(6)
    if micros != micros.to_integral_value():
        raise ValueError(f"{amount} has more than 6 decimals")
    return int(micros)


def rate(rate_ppm: int) -> Decimal:
    """An exact tax rate from millionths (``190000`` → ``Decimal('0.19')``)."""
    return Decimal(rate_ppm) / PPM


def parse_rate_ppm(text: str) -> int:
    """``"20%"``, ``"19.6 %"`` or ``"0.2"`` → millionths; exact, refuses more precision than a millionth."""
    text = text.strip()
    percent = text.endswith("%")
    value = Decimal(text.rstrip("%").strip())
    if percent:
        value /= 100
    ppm = value * PPM
    if ppm != ppm.to_integral_value() or not 0 <= ppm <= PPM:
        raise ValueError(f"rate must be between 0 and 100 % in steps of 0.0001 %, got {text!r}")
    return int(ppm)


def format_amount(micros: int, currency: str) -> str:
    """An amount for people, rounded to the currency: ``-12.30``."""
    return str(round_to_currency(D(micros), currency))

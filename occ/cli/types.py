"""The option types every ``occ`` command shares: one money type, one percent type, one way to retire a spelling.

- :data:`MONEY` — a decimal amount in the currency's major unit with at most 6 decimals, optionally signed
  (``10.50``, ``-0.25``) → integer micro-units, refused beyond the range OCC keeps exact.
- :data:`PERCENT` — a number of percent with at most 4 decimals and an optional ``%`` (``20``, ``5.5``, ``20%``)
  → parts per million, exactly (``20`` = 200000). A number is always percent: ``0.2`` is 0.2 %, not 20 %.
- :data:`LEGACY_RATE` — :data:`PERCENT` plus, for one release, the spellings ``occ bill tax-profile set --rate``
  took before: a bare fraction below 1 (``0.2`` meant 20 %: it still does, with a warning, because reading it as
  0.2 % would change a tax a hundredfold without a word) and ``19.6 %`` with a space. Write ``20`` or ``20%``.
- :func:`renamed` — an option's old name, still taken for one release with a warning on stderr.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import click

from rating_engine.money import MAX_EXACT_MICROS, format_micros, parse_micros

F = TypeVar("F", bound=Callable[..., Any])
PPM_PER_PERCENT = 10_000


class Money(click.ParamType):
    """A decimal amount (at most 6 decimals, optionally signed) → micro-units."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            micros = parse_micros(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)
        if abs(micros) > MAX_EXACT_MICROS:
            self.fail(
                f"{value!r} is too large: OCC keeps amounts within ±{format_micros(MAX_EXACT_MICROS)}", param, ctx
            )
        return micros


class Percent(click.ParamType):
    """A rate in percent with at most 4 decimals (``20``, ``5.5``, ``20%``) → parts per million, exactly."""

    name = "percent"
    _PATTERN = re.compile(r"^(?P<whole>[0-9]{1,3})(?:\.(?P<frac>[0-9]{1,4}))?%?$")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = self._PATTERN.match(str(value).strip())
        if match is None:
            self.fail(f"{value!r} is not a percentage with at most 4 decimals (e.g. 20 or 5.5)", param, ctx)
        ppm = int(match["whole"]) * PPM_PER_PERCENT + int((match["frac"] or "").ljust(4, "0"))
        if ppm > 100 * PPM_PER_PERCENT:
            self.fail(f"{value!r} is more than 100 %", param, ctx)
        return ppm


class LegacyRate(Percent):
    """:class:`Percent`, and for one release the old spellings of ``--rate`` (a fraction ``0.2``, ``19.6 %``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        if re.fullmatch(r"[0-9.]+\s+%", text):
            deprecated(f"{text!r} (a space before %)", f"{text.replace(' ', '')!r}")
            return super().convert(text.replace(" ", ""), param, ctx)
        fraction = _fraction_below_one(text)
        if fraction is not None:
            percent = format(fraction * 100, "f").rstrip("0").rstrip(".")
            deprecated(f"{text!r} as a fraction", f"{percent!r} (a number is percent: {text} would be {text} %)")
            return super().convert(percent, param, ctx)
        return super().convert(value, param, ctx)


def _fraction_below_one(text: str) -> Decimal | None:
    """``text`` as a fraction if it is a bare decimal strictly between 0 and 1 (``0.2``, ``.07``), else None."""
    if not re.fullmatch(r"0?\.[0-9]+", text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if 0 < value < 1 else None


MONEY = Money()
PERCENT = Percent()
LEGACY_RATE = LegacyRate()


def deprecated(old: str, new: str) -> None:
    """Say on stderr that ``old`` is deprecated in favour of ``new`` (it still works, for one release)."""
    click.echo(f"warning: {old} is deprecated and will stop working in the next release; use {new}", err=True)


def renamed(old: str, new: str, **option: Any) -> Callable[[F], F]:
    """A hidden option ``old`` that stands for ``new`` for one release: when given, a warning goes to stderr and
    its value goes where ``new``'s would (``new`` wins if both are given).

    ``option`` are ``click.option`` settings (type …) shared with ``new``; ``new``'s parameter name must be the one
    click derives from it (``--tax-ledger`` → ``tax_ledger``).
    """
    target = new.lstrip("-").replace("-", "_")

    def take(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            deprecated(old, new)
            ctx.meta.setdefault("occ_renamed", {})[target] = value

    return click.option(old, hidden=True, expose_value=False, default=None, callback=take, **option)


def resolved(ctx: click.Context, name: str, value: Any) -> Any:
    """``value`` of option ``name``, or the value its old spelling (:func:`renamed`) gave when ``name`` was unset."""
    if value not in (None, ""):
        return value
    return ctx.meta.get("occ_renamed", {}).get(name, value)

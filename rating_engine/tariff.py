"""The tariff model: what a tariff directory says, validated and immutable.

A ``Tariff`` is the parsed, checked content of one tariff directory (see ``load.py`` and ``docs/tariffs.md``). It is
the input of both rating paths: ``compile.py`` turns it into NumPy arrays for batch rating and ``scalar.py`` reads it
directly as the reference oracle. Amounts are integer micro-units; units are seconds, octets or messages.
"""

from __future__ import annotations

import enum

import msgspec

WEEK_MINUTES = 7 * 24 * 60
MAX_USAGE = 10**12
"""Largest usage one call may report, in its unit; keeps every cost computation inside int64."""
MAX_VOICE_SECONDS = 10**7
"""Largest voice usage of one call (about 115 days); bounds how many time-band parts a call can have."""
ANY = "*"
"""Wildcard for the ``group`` and ``band`` columns of a rate plan."""


class Service(enum.IntEnum):
    """What is being rated; fixes the unit of usage."""

    VOICE = 0
    DATA = 1
    MESSAGE = 2

    @property
    def unit(self) -> str:
        return ("seconds", "octets", "messages")[self]

    @classmethod
    def parse(cls, text: str) -> Service:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown service {text!r}; expected one of {names}") from None


class DestinationGroup(msgspec.Struct, frozen=True):
    """A set of destinations priced alike.

    Attributes:
        name: the group's id, referenced by destinations and rate plans.
        ledger_code: the general-ledger account that revenue of calls to this group posts to (e.g. 400000001).
        category: a free label for reports (local, mobile, international, premium …).
        description: free text.
    """

    name: str
    ledger_code: int
    category: str
    description: str = ""


class RateInterval(msgspec.Struct, frozen=True):
    """One step of a step tariff.

    Attributes:
        start: usage offset from the start of the call (in the service's unit) where this step begins.
        price_micros: the price of ``per`` units, in micro-units.
        per: how many units ``price_micros`` buys (60 for a per-minute price).
        increment: usage in this step is billed in whole multiples of this many units, rounded up.
    """

    start: int
    price_micros: int
    per: int
    increment: int


class Rate(msgspec.Struct, frozen=True):
    """A step tariff.

    Attributes:
        name: the rate's id (reported on every rated record as ``rate_id``).
        connect_fee_micros: charged once for any call with positive usage.
        min_charge_micros: a call with positive usage costs at least this much (0: no minimum).
        max_cost_micros: a call costs at most this much (``None``: no cap).
        intervals: the steps, ordered by ``start``; the first starts at 0.
    """

    name: str
    connect_fee_micros: int
    min_charge_micros: int
    max_cost_micros: int | None
    intervals: tuple[RateInterval, ...]


class BandWindow(msgspec.Struct, frozen=True):
    """A weekly time window belonging to a time band, in the tariff's time zone.

    Attributes:
        band: the band's name.
        days: weekdays the window applies to, 0 = Monday … 6 = Sunday.
        start_minute: first minute of the day in the window (0 … 1439).
        end_minute: the minute of the day the window ends before (1 … 1440).
    """

    band: str
    days: tuple[int, ...]
    start_minute: int
    end_minute: int


class Binding(msgspec.Struct, frozen=True):
    """One row of a rate plan: which rate prices a service to a destination group in a time band.

    Attributes:
        plan: the tariff plan (accounts name the plan they are on).
        service: what is rated.
        group: a destination group name, or ``*`` for any destination (and for calls with no called number).
        band: a time band name, or ``*`` for every band.
        rate: the rate's name.
        ledger_code: overrides the destination group's ledger code; required when ``group`` is ``*``.
    """

    plan: str
    service: Service
    group: str
    band: str
    rate: str
    ledger_code: int | None = None


class Tariff(msgspec.Struct, frozen=True):
    """A validated tariff directory.

    Attributes:
        name: the tariff's name.
        currency: ISO 4217 code of every amount in the tariff.
        timezone: IANA time zone the time bands are read in.
        country_code: replaces the trunk ``0`` of national numbers; empty to keep them as written.
        groups: destination groups by name.
        prefixes: normalised prefix → destination group name.
        rates: rates by name.
        bands: the weekly windows; together they cover every minute of the week exactly once.
        bindings: the rate plans' rows.
    """

    name: str
    currency: str
    timezone: str
    country_code: str
    groups: dict[str, DestinationGroup]
    prefixes: dict[str, str]
    rates: dict[str, Rate]
    bands: tuple[BandWindow, ...]
    bindings: tuple[Binding, ...]

    @property
    def band_names(self) -> list[str]:
        """Band names in order of first appearance."""
        return list(dict.fromkeys(w.band for w in self.bands))

    @property
    def plans(self) -> list[str]:
        """Plan names in order of first appearance."""
        return list(dict.fromkeys(b.plan for b in self.bindings))

"""A period's billable items → the statement: lines per ledger code, payments, adjustments, taxes, totals. Pure.

Prepaid tax is not computed here: the online core took it at top-up and settlement recorded it as a TAX xDR (kind
``topup_tax``, cost = the tax, id = its top-up's id + ``:tax``). Those xDRs become TAX lines as they are, one per
(top-up ledger code, tax ledger code, rate, tax code): amount and tax = the tax taken (it is part of the balance
change: the balance was credited net), net = the top-ups' gross less that tax, reference = the top-up ledger code.

All sums are exact (int micro-units, Decimal for tax); each line is rounded once to the currency (ROUND_HALF_UP);
tax is computed on the unrounded sum of each (ledger code, rate); the total is the rounded unrounded-sum, and the
difference between it and the sum of the rounded lines is an explicit ROUNDING line. Signs: amounts are what the
customer owes (a payment is negative).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

import msgspec

from settlement.billing.amounts import D, round_to_currency, to_micros
from settlement.billing.cycle import local_date
from settlement.billing.tax import TaxProfile, tax_in_gross, tax_on_net
from settlement.vocabulary import USAGE_KINDS, RecordType, TaxMode

CATEGORIES = ("CHARGE", "CREDIT", "CORRECTION", "ADJUSTMENT", "PAYMENT", "TAX", "ROUNDING")
SERVICE_UNITS = {"voice": "s", "data": "octets", "message": "msgs", "": ""}
UsageKey = tuple[str, str, str, int]
"""A usage line's group: category, ledger code, service, and the start of the period its late items belonged to (0:
on time)."""


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One billable item (an xDR) as billing reads it.

    Attributes:
        id: the xDR id.
        kind: session, event_charge, event_refund, topup, payment, adjustment, refund (or tax).
        record_type: MAIN, PAYMENT, TAX or TEXT.
        ledger_code: the G/L code.
        service: voice, data, message or "".
        units: usage units (seconds, octets, messages).
        cost: what the customer owes, micro-units (negative: a credit).
        currency: ISO 4217 code.
        revision: 0 for an original item, > 0 for a re-rating correction.
        end_ms: when it happened (Unix ms).
        late_period_start_ms: for a late item (billed after its own period was invoiced, ``late.py``), the start of
            the period it belonged to; None for an item billed in its own period.
        reference: session id or idempotency key.
        description: free text.
        tax_code, tax_rate_ppm: a TAX item's tax code and rate ("" and 0 otherwise).
    """

    id: str
    kind: str
    record_type: str
    ledger_code: str
    service: str
    units: int
    cost: int
    currency: str
    revision: int
    end_ms: int
    reference: str = ""
    description: str = ""
    tax_code: str = ""
    tax_rate_ppm: int = 0
    late_period_start_ms: int | None = None


PREPAID_TAX_KIND = "topup_tax"
PREPAID_TAX_SUFFIX = ":tax"  # settlement.entries.TAX_SUFFIX


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One statement line (stored in ``invoice_lines``).

    Attributes:
        category: CHARGE, CREDIT, CORRECTION, ADJUSTMENT, PAYMENT, TAX or ROUNDING.
        ledger_code: the G/L code it posts to.
        description: for people.
        count: items summed into it; units: their units.
        amount: what it adds to the balance, rounded micro-units (0 for tax that is included, not added).
        net: the amount without tax; tax: the line's tax (rounded); tax_code and tax_rate_ppm: how it is taxed.
        time_ms: for single movements (payments, adjustments), when; reference: their key, or a TAX line's base code.
    """

    category: str
    ledger_code: str
    description: str
    count: int
    units: int
    amount: int
    net: int
    tax: int
    tax_code: str
    tax_rate_ppm: int
    time_ms: int | None = None
    reference: str = ""


class TaxGroup(msgspec.Struct, frozen=True, kw_only=True):
    """The tax of one (ledger code, rate): the base is the unrounded sum; tax is rounded once."""

    ledger_code: str
    rate_ppm: int
    count: int
    units: int
    base: int  # unrounded sum of the items' cost, micro-units
    base_rounded: int
    tax_exact: Decimal
    tax: int  # rounded micro-units


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    """The computed statement of one account and period (amounts rounded micro-units)."""

    currency: str
    profile: TaxProfile
    brought_forward: int
    lines: tuple[Line, ...]
    tax_groups: tuple[TaxGroup, ...]
    charges: int
    payments: int
    adjustments: int
    tax: int
    rounding: int
    carried_forward: int
    item_count: int
    late_items: int  # of ``item_count``: items billed after their own period was invoiced (lines of their own)
    prepaid_tax: int  # of ``tax``: the tax taken at top-up (TAX lines from settlement's topup_tax xDRs)
    foreign_currency: tuple[str, ...]  # ids of items in another currency than the account's (a validation problem)


def _round(micros: int | Decimal, currency: str) -> int:
    return to_micros(round_to_currency(D(micros) if isinstance(micros, int) else micros.scaleb(-6), currency))


def category(item: Item) -> str:
    if item.record_type == RecordType.PAYMENT:
        return "PAYMENT"
    if item.kind == "adjustment":
        return "ADJUSTMENT"
    if item.revision > 0:
        return "CORRECTION"
    return "CREDIT" if item.kind == "event_refund" else "CHARGE"


def _taxable(item: Item, profile: TaxProfile) -> bool:
    if profile.mode in (TaxMode.EXCLUSIVE, TaxMode.INCLUSIVE):
        return item.kind in USAGE_KINDS
    return False  # PREPAID: the tax was taken at top-up; its TAX xDRs are billed as they are


def _describe(cat: str, ledger_code: str, service: str, late_day: str = "") -> str:
    label = {"CHARGE": "Usage", "CREDIT": "Usage credits", "CORRECTION": "Corrections after re-rating"}[cat]
    text = f"{label} {service} ({ledger_code})" if service else f"{label} ({ledger_code})"
    return f"Late {text[0].lower()}{text[1:]} of {late_day}" if late_day else text


class _Gathered:
    """One pass over the items: sums per line group and per taxed ledger code, single lines, what stands out."""

    def __init__(self, brought_forward: int) -> None:
        # (cat, code, service, start of the period a late item belonged to, 0 when on time) → n, units, Σ cost
        self.groups: dict[UsageKey, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.taxed: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # ledger code → n, units, Σ cost
        self.singles: list[Line] = []
        self.foreign: list[str] = []
        self.topups: dict[str, Item] = {}
        self.prepaid_taxes: list[Item] = []
        self.exact_total = brought_forward
        self.count = 0
        self.late = 0  # of count: items billed after their own period was invoiced

    def add(self, item: Item, currency: str, profile: TaxProfile) -> None:
        self.count += 1
        self.late += item.late_period_start_ms is not None
        if item.currency != currency:
            self.foreign.append(item.id)
        self.exact_total += item.cost
        if item.record_type == RecordType.TAX and item.kind == PREPAID_TAX_KIND:
            self.prepaid_taxes.append(item)
            return
        if item.kind == "topup":
            self.topups[item.id] = item
        cat = category(item)
        if _taxable(item, profile):
            t = self.taxed[item.ledger_code]
            base = -item.cost if profile.mode == TaxMode.PREPAID else item.cost  # prepaid: the money that came in
            t[0], t[1], t[2] = t[0] + 1, t[1] + item.units, t[2] + base
        if cat in ("PAYMENT", "ADJUSTMENT"):
            amount = _round(item.cost, currency)
            title = item.description or item.kind.replace("_", " ").capitalize()
            title = title if item.late_period_start_ms is None else f"{title} (late)"
            self.singles.append(Line(category=cat, ledger_code=item.ledger_code, description=title, count=1, units=0,
                                     amount=amount, net=amount, tax=0, tax_code="", tax_rate_ppm=0,
                                     time_ms=item.end_ms, reference=item.reference))  # fmt: skip
        else:
            g = self.groups[(cat, item.ledger_code, item.service, item.late_period_start_ms or 0)]
            g[0], g[1], g[2] = g[0] + 1, g[1] + item.units, g[2] + item.cost


def compute(items: Iterable[Item], *, currency: str, profile: TaxProfile, brought_forward: int,
            timezone: str = "UTC") -> Statement:  # fmt: skip
    """The statement of ``items`` for an account taxed by ``profile`` whose previous balance is ``brought_forward``.

    Late items get lines of their own, per period they belonged to (its first day in ``timezone`` names it).
    """
    gathered = _Gathered(brought_forward)
    for item in items:
        gathered.add(item, currency, profile)
    tax_groups = _tax_groups(gathered.taxed, currency, profile)
    order = {c: i for i, c in enumerate(CATEGORIES)}
    lines = _usage_lines(gathered.groups, currency, profile, timezone)
    lines.extend(sorted(gathered.singles, key=lambda line: (order[line.category], line.time_ms or 0, line.reference)))
    tax_lines, added_tax = _tax_lines(tax_groups, profile)
    lines.extend(tax_lines)
    prepaid_lines = _prepaid_tax_lines(gathered.prepaid_taxes, gathered.topups, currency, profile)
    lines.extend(prepaid_lines)

    def total(*cats: str, field: str = "amount") -> int:
        return sum(getattr(line, field) for line in lines if line.category in cats)

    charges = total("CHARGE", "CREDIT", "CORRECTION")
    payments, adjustments = total("PAYMENT"), total("ADJUSTMENT")
    carried = to_micros(round_to_currency(D(gathered.exact_total) + added_tax, currency))
    rounding = carried - (brought_forward + charges + payments + adjustments + total("TAX"))
    if rounding:
        lines.append(Line(category="ROUNDING", ledger_code=profile.tax_ledger_code or _first_code(lines),
                          description="Rounding difference", count=0, units=0, amount=rounding, net=rounding, tax=0,
                          tax_code="", tax_rate_ppm=0))  # fmt: skip
    return Statement(currency=currency, profile=profile, brought_forward=brought_forward, lines=tuple(lines),
                     tax_groups=tuple(tax_groups), charges=charges, payments=payments, adjustments=adjustments,
                     tax=total("TAX", field="tax"), rounding=rounding, carried_forward=carried,
                     item_count=gathered.count, late_items=gathered.late,
                     prepaid_tax=sum(line.tax for line in prepaid_lines),
                     foreign_currency=tuple(gathered.foreign))  # fmt: skip


def _inclusive(profile: TaxProfile) -> bool:
    """Whether the profile's prices include the tax (it is shown, not added)."""
    return profile.mode in (TaxMode.INCLUSIVE, TaxMode.PREPAID)


def _tax_of(total: int, profile: TaxProfile) -> Decimal:
    """The exact tax in (inclusive) or on (exclusive) a sum of micro-units."""
    return tax_in_gross(D(total), profile) if _inclusive(profile) else tax_on_net(D(total), profile)


def _tax_groups(taxed: dict[str, list[int]], currency: str, profile: TaxProfile) -> list[TaxGroup]:
    """The tax of each taxed ledger code, on its unrounded sum, rounded once."""
    groups = []
    for code in sorted(taxed):
        count, units, base = taxed[code]
        exact = _tax_of(base, profile)
        groups.append(TaxGroup(ledger_code=code, rate_ppm=profile.rate_ppm, count=count, units=units, base=base,
                               base_rounded=_round(base, currency), tax_exact=exact,
                               tax=to_micros(round_to_currency(exact, currency))))  # fmt: skip
    return groups


def _usage_lines(groups: dict[UsageKey, list[int]], currency: str, profile: TaxProfile, timezone: str) -> list[Line]:
    """One line per (category, ledger code, service), in category order, with the tax it carries; late items of
    each, per period they belonged to, after the on-time line."""
    order = {c: i for i, c in enumerate(CATEGORIES)}
    usage_taxed = profile.mode in (TaxMode.EXCLUSIVE, TaxMode.INCLUSIVE)
    lines = []
    ordered = sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0]))  # on time, then late (code, service)
    for (cat, code, service, late_ms), (count, units, total) in ordered:
        amount = _round(total, currency)
        tax = to_micros(round_to_currency(_tax_of(total, profile), currency)) if usage_taxed else 0
        net = amount - tax if _inclusive(profile) else amount
        late_day = local_date(late_ms, timezone).isoformat() if late_ms else ""
        lines.append(Line(category=cat, ledger_code=code, description=_describe(cat, code, service, late_day),
                          count=count, units=units, amount=amount, net=net, tax=tax, tax_code=profile.tax_code,
                          tax_rate_ppm=profile.rate_ppm))  # fmt: skip
    return lines


def _tax_lines(tax_groups: list[TaxGroup], profile: TaxProfile) -> tuple[list[Line], Decimal]:
    """A TAX line per tax group, and the exact tax they add (EXCLUSIVE: added; otherwise included, adding 0)."""
    added = profile.mode == TaxMode.EXCLUSIVE
    what = "top-ups" if profile.mode == TaxMode.PREPAID else None
    how = "on" if added else "included in"
    lines = [
        Line(category="TAX", ledger_code=profile.tax_ledger_code,
             description=f"Tax {profile.label()} {how} {what or group.ledger_code}", count=group.count, units=0,
             amount=group.tax if added else 0, net=group.base_rounded - (0 if added else group.tax), tax=group.tax,
             tax_code=profile.tax_code, tax_rate_ppm=group.rate_ppm, reference=group.ledger_code)
        for group in tax_groups
    ]  # fmt: skip
    added_tax = sum((group.tax_exact for group in tax_groups), Decimal(0)) if added else Decimal(0)
    return lines, added_tax


ROUNDING_LEDGER_CODE = "0"


def _prepaid_tax_lines(taxes: list[Item], topups: dict[str, Item], currency: str, profile: TaxProfile) -> list[Line]:
    """TAX lines for the tax taken at top-up: per (top-up ledger code, tax ledger code, rate, tax code), the tax and
    the gross of the top-ups it was taken from (found by id: a tax xDR's id is its top-up's id + ``:tax``)."""
    groups: dict[tuple[str, str, int, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # → n, Σ tax, Σ gross
    for item in taxes:
        topup = topups.get(item.id.removesuffix(PREPAID_TAX_SUFFIX))
        base_code = topup.ledger_code if topup is not None else ""
        g = groups[(base_code, item.ledger_code, item.tax_rate_ppm, item.tax_code or profile.tax_code)]
        g[0], g[1], g[2] = g[0] + 1, g[1] + item.cost, g[2] + (-topup.cost if topup is not None else item.cost)
    lines = []
    for (base_code, code, rate_ppm, tax_code), (count, tax, gross) in sorted(groups.items()):
        tax_rounded = _round(tax, currency)
        percent = (Decimal(rate_ppm) / 10_000).normalize()
        lines.append(Line(category="TAX", ledger_code=code, count=count, units=0, amount=tax_rounded,
                          description=f"Tax {tax_code} {percent:f} % taken from top-ups ({base_code or '?'})",
                          net=_round(gross, currency) - tax_rounded, tax=tax_rounded, tax_code=tax_code,
                          tax_rate_ppm=rate_ppm, reference=base_code))  # fmt: skip
    return lines


def _first_code(lines: list[Line]) -> str:
    return next((line.ledger_code for line in lines if line.ledger_code), ROUNDING_LEDGER_CODE)

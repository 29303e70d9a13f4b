"""Invoice checks: named validators, each returning a list of problems (empty = fine). Pure.

An invoice becomes COMPLETE only when :func:`problems` is empty; otherwise it stays DRAFT with the problems as its
``state_reason`` (and takes no number, marks no xDR).
"""

from __future__ import annotations

from collections.abc import Callable

from settlement.billing.amounts import quantum, to_micros
from settlement.billing.parties import Issuer, Party
from settlement.billing.statement import Statement
from settlement.billing.tax import check_profile
from settlement.vocabulary import TaxMode

Validator = Callable[[Statement], list[str]]


def balances(s: Statement) -> list[str]:
    added = sum(line.amount for line in s.lines if line.category == "TAX")  # tax added (EXCLUSIVE) or taken at top-up
    expected = s.brought_forward + s.charges + s.payments + s.adjustments + added + s.rounding
    if expected != s.carried_forward:
        return [f"balance does not carry: brought forward + movements = {expected}, carried forward "
                f"{s.carried_forward} (micro-units)"]  # fmt: skip
    return []


def totals_match_lines(s: Statement) -> list[str]:
    sums = {"charges": 0, "payments": 0, "adjustments": 0, "tax": 0, "rounding": 0}
    field = {"CHARGE": "charges", "CREDIT": "charges", "CORRECTION": "charges", "PAYMENT": "payments",
             "ADJUSTMENT": "adjustments", "ROUNDING": "rounding"}  # fmt: skip
    for line in s.lines:
        if line.category == "TAX":
            sums["tax"] += line.tax
        else:
            sums[field[line.category]] += line.amount
    return [f"{name} total {getattr(s, name)} differs from its lines' sum {value}"
            for name, value in sums.items() if getattr(s, name) != value]  # fmt: skip


def every_line_has_a_ledger_code(s: Statement) -> list[str]:
    return [f"line {i} ({line.description}) has no ledger code" for i, line in enumerate(s.lines, 1)
            if not line.ledger_code]  # fmt: skip


def amounts_are_rounded(s: Statement) -> list[str]:
    step = to_micros(quantum(s.currency)) if quantum(s.currency).as_tuple().exponent >= -6 else 1
    problems = []
    for i, line in enumerate(s.lines, 1):
        for name in ("amount", "net", "tax"):
            if getattr(line, name) % step:
                problems.append(f"line {i} {name} {getattr(line, name)} is not rounded to {s.currency}")
    return problems


def one_currency(s: Statement) -> list[str]:
    if not s.foreign_currency:
        return []
    shown = ", ".join(s.foreign_currency[:5])
    return [f"{len(s.foreign_currency)} item(s) are not in {s.currency}: {shown}"]


def prepaid_tax_under_a_prepaid_profile(s: Statement) -> list[str]:
    """Tax taken at top-up (the online core's prepaid tax) belongs to a PREPAID profile: any other mode would tax the
    usage as well, or not expect tax at all (the account's online and billing settings disagree)."""
    if not s.prepaid_tax or s.profile.mode == TaxMode.PREPAID:
        return []
    return [
        f"tax was taken at top-up but tax profile {s.profile.name!r} is {s.profile.mode}, not PREPAID: make "
        "the account's prepaid tax (occ account update) and its tax profile agree"
    ]


def tax_profile_usable(s: Statement) -> list[str]:
    return [f"tax profile {s.profile.name!r}: {p}" for p in check_profile(s.profile)]


def parties(issuer: Issuer | None, customer: Party) -> list[str]:
    """Seller and buyer details. An invoice without them is not a valid tax invoice, but a store set up before they
    existed must keep billing: so only a tenant whose issuer requires details (``occ bill issuer set
    --require-details``) keeps an invoice to a customer without a name or an address DRAFT. Otherwise the invoice
    issues and prints what is missing."""
    if issuer is None or not issuer.require_details or customer.complete:
        return []
    missing = " and ".join(what for what, there in (("name", customer.name), ("address", customer.address))
                           if not there)  # fmt: skip
    return [f"customer {missing} required by tenant {issuer.tenant!r}'s issuer settings: "
            "occ bill account set ACCOUNT --name … --address …"]  # fmt: skip


VALIDATORS: tuple[Validator, ...] = (
    tax_profile_usable,
    prepaid_tax_under_a_prepaid_profile,
    one_currency,
    every_line_has_a_ledger_code,
    amounts_are_rounded,
    totals_match_lines,
    balances,
)


def problems(s: Statement, *, extra: list[str] | None = None) -> list[str]:
    """Everything wrong with the statement (``extra``: problems found before it was computed, e.g. a missing
    tax profile)."""
    found = list(extra or [])
    for validator in VALIDATORS:
        found.extend(validator(s))
    return found

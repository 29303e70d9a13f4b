"""Tax profiles and tax arithmetic: exact Decimal, on unrounded sums per (ledger code, rate), rounded once.

Modes:
    EXCLUSIVE: prices are net; at period close a taxation xDR per ledger code adds ``net × rate``.
    INCLUSIVE: prices include tax; the invoice back-calculates ``gross × rate / (1 + rate)`` (shown, not added).
    PREPAID: tax is due on top-ups (money in), not on usage. It is not computed here: the online core takes it at
        top-up (the account's prepaid tax rate; the balance is credited net) and settlement books it as a TAX xDR
        (kind ``topup_tax``, cost = the tax); the invoice bills those as TAX lines. Period close adds nothing.
    EXEMPT: no tax (lines carry the profile's tax code, e.g. ``EXEMPT``).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from settlement.billing.amounts import rate
from settlement.vocabulary import TaxMode

MODES = tuple(mode.value for mode in TaxMode)
"""The modes as plain strings (for option choices and messages)."""
NO_TAX_CODE = "EXEMPT"


class TaxProfile(msgspec.Struct, frozen=True, kw_only=True):
    """How an account is taxed.

    Attributes:
        name: the profile's name (what accounts and customer classes refer to).
        mode: a :class:`~settlement.vocabulary.TaxMode` (EXCLUSIVE, INCLUSIVE, PREPAID or EXEMPT).
        rate_ppm: the rate in millionths (200000 = 20 %); 0 for EXEMPT.
        tax_code: the VAT group / tax code written on lines and sent to the ERP.
        tax_ledger_code: the G/L code tax lines post to.
    """

    name: str
    mode: TaxMode
    rate_ppm: int
    tax_code: str
    tax_ledger_code: str

    @property
    def rate(self) -> Decimal:
        return rate(self.rate_ppm)

    def label(self) -> str:
        percent = (self.rate * 100).normalize()
        return f"{self.tax_code} {percent:f} %"


# What an account without any profile gets: no tax. (A profile that is *named* but not defined is an error instead.)
UNTAXED = TaxProfile(name="", mode=TaxMode.EXEMPT, rate_ppm=0, tax_code=NO_TAX_CODE, tax_ledger_code="")


def check_profile(profile: TaxProfile) -> list[str]:
    """Problems with a profile's definition (empty when it can be used)."""
    problems = []
    if profile.mode not in MODES:
        problems.append(f"mode must be one of {', '.join(MODES)}, got {profile.mode!r}")
    if not 0 <= profile.rate_ppm <= 1_000_000:
        problems.append(f"rate must be 0 to 100 %, got {profile.rate_ppm} ppm")
    if profile.mode == TaxMode.EXEMPT and profile.rate_ppm:
        problems.append("an EXEMPT profile has rate 0")
    if profile.mode != TaxMode.EXEMPT and (not profile.tax_ledger_code.isdigit() or len(profile.tax_ledger_code) > 15):
        problems.append(f"tax ledger code must be 1-15 digits, got {profile.tax_ledger_code!r}")
    if not profile.tax_code or len(profile.tax_code) > 20:
        problems.append("tax code is required (at most 20 characters)")
    return problems


def tax_on_net(net: Decimal, profile: TaxProfile) -> Decimal:
    """Tax added to a net amount (unrounded)."""
    return net * profile.rate


def tax_in_gross(gross: Decimal, profile: TaxProfile) -> Decimal:
    """Tax contained in a gross amount (unrounded): ``gross × r / (1 + r)``."""
    r = profile.rate
    return gross * r / (1 + r)

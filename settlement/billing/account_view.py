"""One account as billing sees it (``occ bill account show``): its billing settings or the defaults, the tax profile
that applies and where it comes from, its open period, and the online settings settlement recorded."""

from __future__ import annotations

import msgspec
from sqlalchemy import Connection, select

from settlement.accounts import recorded
from settlement.billing.cycle import next_boundary
from settlement.billing.run import last_ends, open_period_start
from settlement.billing.setup import BillingAccount, load_accounts, load_tax_setup
from settlement.billing.tax import TaxProfile
from settlement.records import AccountRow
from settlement.store.schema import billing_accounts


class AccountView(msgspec.Struct, frozen=True, kw_only=True):
    """Attributes:
    billing: the billing settings (the defaults where none were set).
    has_settings: whether ``occ bill account set`` stored any (else the defaults apply).
    profile: the tax profile that applies; profile_source: "account", "class <name>" or "" (none: untaxed).
    problems: why that profile cannot be used (an undefined profile or class), empty when it can.
    open_start_ms, open_end_ms: the open period, up to the next billing-day midnight.
    recorded: what settlement recorded of the account (its online settings, from its account entries).
    """

    billing: BillingAccount
    has_settings: bool
    profile: TaxProfile
    profile_source: str
    problems: tuple[str, ...]
    open_start_ms: int
    open_end_ms: int
    recorded: AccountRow


def account_view(connection: Connection, account: str) -> AccountView:
    """The view of ``account``; :class:`settlement.accounts.NotInBooks` when settlement has not recorded it."""
    books = recorded(connection, account)
    [billing] = load_accounts(connection, [account])
    taxes = load_tax_setup(connection)
    profile, problems = taxes.profile_of(billing)
    source = "account" if billing.tax_profile else f"class {billing.customer_class}" if billing.customer_class else ""
    start = open_period_start(billing, last_ends(connection, [account]).get(account))
    end = next_boundary(start, billing.billing_day, billing.timezone)
    query = select(billing_accounts.c.account).where(billing_accounts.c.account == account)
    has_settings = connection.execute(query).first() is not None
    return AccountView(billing=billing, has_settings=has_settings, profile=profile, profile_source=source,
                       problems=tuple(problems), open_start_ms=start, open_end_ms=end, recorded=books)  # fmt: skip

"""Billing settings in SQL: tax profiles, customer classes, accounts' billing cycle, tax and customer details, each
tenant's issuer (seller), and reading them back."""

from __future__ import annotations

import time

import msgspec
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from settlement.billing.cycle import check_billing_day, zone
from settlement.billing.parties import Issuer, Party, check_issuer, normalise
from settlement.billing.tax import UNTAXED, TaxProfile, check_profile
from settlement.store.schema import accounts, billing_accounts, billing_issuers, customer_classes, tax_profiles

DEFAULT_TENANT = "default"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_BILLING_DAY = 1


class SetupError(ValueError):
    """A billing setting that cannot be stored; the message names the field."""


class BillingAccount(msgspec.Struct, frozen=True, kw_only=True):
    """An account as billing sees it (settlement's ``accounts`` row with its billing settings or the defaults).

    Attributes:
        account, currency, first_seen_ms: from settlement.
        tenant: whose invoice numbers it takes; customer_code: the ERP's customer code (default: the account id).
        customer_class, tax_profile: names ("" = none); the account's own profile wins over its class's.
        billing_day: 1–28; timezone: IANA name. Periods start at local midnight of the billing day.
        customer_name, customer_address (lines), customer_vat_id: the customer as invoices print it.
    """

    account: str
    currency: str
    first_seen_ms: int
    tenant: str = DEFAULT_TENANT
    customer_code: str = ""
    customer_class: str = ""
    tax_profile: str = ""
    billing_day: int = DEFAULT_BILLING_DAY
    timezone: str = DEFAULT_TIMEZONE
    customer_name: str = ""
    customer_address: tuple[str, ...] = ()
    customer_vat_id: str = ""

    @property
    def customer(self) -> Party:
        return Party(name=self.customer_name, address=self.customer_address, vat_id=self.customer_vat_id)


def _upsert(connection: Connection, table, row: dict, keys: list[str]) -> None:
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = module.insert(table).values(**row)
    changes = {k: v for k, v in row.items() if k not in keys}
    statement = statement.on_conflict_do_update(index_elements=keys, set_=changes)
    connection.execute(statement)


def set_tax_profile(connection: Connection, profile: TaxProfile) -> None:
    problems = check_profile(profile)
    if problems:
        raise SetupError("; ".join(problems))
    _upsert(connection, tax_profiles, msgspec.structs.asdict(profile), ["name"])


def set_customer_class(connection: Connection, name: str, tax_profile: str) -> None:
    if not name:
        raise SetupError("class name is required")
    if connection.execute(select(tax_profiles.c.name).where(tax_profiles.c.name == tax_profile)).first() is None:
        raise SetupError(f"tax profile {tax_profile!r} is not defined (occ bill tax-profile set first)")
    _upsert(connection, customer_classes, {"name": name, "tax_profile": tax_profile}, ["name"])


def set_account(connection: Connection, account: str, **changes: object) -> BillingAccount:
    """Create or change an account's billing settings; only the given fields change. Returns the result."""
    current = connection.execute(select(billing_accounts).where(billing_accounts.c.account == account)).first()
    row = dict(current._mapping) if current else {
        "account": account, "tenant": DEFAULT_TENANT, "customer_code": account, "customer_class": "",
        "tax_profile": "", "billing_day": DEFAULT_BILLING_DAY, "timezone": DEFAULT_TIMEZONE, "customer_name": "",
        "customer_address": "", "customer_vat_id": "",
    }  # fmt: skip
    row.update({k: v for k, v in changes.items() if v is not None})
    row["customer_address"] = _joined(row["customer_address"])
    customer, problems = normalise(Party(name=str(row["customer_name"]), vat_id=str(row["customer_vat_id"]),
                                         address=tuple(str(row["customer_address"]).splitlines())))  # fmt: skip
    if problems:
        raise SetupError("; ".join(problems))
    row.update(customer_name=customer.name, customer_address="\n".join(customer.address),
               customer_vat_id=customer.vat_id)  # fmt: skip
    try:
        check_billing_day(int(row["billing_day"]))  # type: ignore[call-overload]
        zone(str(row["timezone"]))
    except ValueError as error:
        raise SetupError(str(error)) from None
    if (
        row["tax_profile"]
        and connection.execute(select(tax_profiles.c.name).where(tax_profiles.c.name == row["tax_profile"])).first()
        is None
    ):
        raise SetupError(f"tax profile {row['tax_profile']!r} is not defined")
    if (
        row["customer_class"]
        and connection.execute(
            select(customer_classes.c.name).where(customer_classes.c.name == row["customer_class"])
        ).first()
        is None
    ):
        raise SetupError(f"customer class {row['customer_class']!r} is not defined")
    if not row["tenant"] or not row["customer_code"]:
        raise SetupError("tenant and customer code must not be empty")
    row["updated_ms"] = int(time.time() * 1000)
    _upsert(connection, billing_accounts, row, ["account"])
    return load_accounts(connection, [account])[0]


def load_accounts(connection: Connection, only: list[str] | None = None) -> list[BillingAccount]:
    """Every account settlement has seen (or ``only`` these), with billing settings or defaults, in id order."""
    b = billing_accounts
    query = (
        select(accounts.c.account, accounts.c.currency, accounts.c.first_seen_ms, b.c.tenant, b.c.customer_code,
               b.c.customer_class, b.c.tax_profile, b.c.billing_day, b.c.timezone, b.c.customer_name,
               b.c.customer_address, b.c.customer_vat_id)
        .select_from(accounts.outerjoin(b, b.c.account == accounts.c.account))
        .order_by(accounts.c.account)
    )  # fmt: skip
    if only is not None:
        query = query.where(accounts.c.account.in_(only))
    result = []
    for r in connection.execute(query):
        extra = {} if r.tenant is None else {
            "tenant": r.tenant, "customer_code": r.customer_code, "customer_class": r.customer_class,
            "tax_profile": r.tax_profile, "billing_day": r.billing_day, "timezone": r.timezone,
            "customer_name": r.customer_name, "customer_address": tuple(r.customer_address.splitlines()),
            "customer_vat_id": r.customer_vat_id,
        }  # fmt: skip
        result.append(BillingAccount(account=r.account, currency=r.currency, first_seen_ms=r.first_seen_ms, **extra))
    return [a if a.customer_code else msgspec.structs.replace(a, customer_code=a.account) for a in result]


class TaxSetup(msgspec.Struct, frozen=True):
    """Every tax profile and customer class, read once per run."""

    profiles: dict[str, TaxProfile]
    classes: dict[str, str]

    def profile_of(self, account: BillingAccount) -> tuple[TaxProfile, list[str]]:
        """The account's profile (its own, else its class's, else none = untaxed) and problems finding it."""
        name = account.tax_profile
        if not name and account.customer_class:
            if account.customer_class not in self.classes:
                return UNTAXED, [f"customer class {account.customer_class!r} is not defined"]
            name = self.classes[account.customer_class]
        if not name:
            return UNTAXED, []
        if name not in self.profiles:
            return msgspec.structs.replace(UNTAXED, name=name), [f"tax profile {name!r} is not defined"]
        return self.profiles[name], []


def load_tax_setup(connection: Connection) -> TaxSetup:
    profiles = {
        r.name: TaxProfile(name=r.name, mode=r.mode, rate_ppm=r.rate_ppm, tax_code=r.tax_code,
                           tax_ledger_code=r.tax_ledger_code)
        for r in connection.execute(select(tax_profiles))
    }  # fmt: skip
    classes = {r.name: r.tax_profile for r in connection.execute(select(customer_classes))}
    return TaxSetup(profiles, classes)


def _joined(address: object) -> str:
    """Address lines as stored: a sequence of lines (the command line's repeated --address) or text as it is."""
    return "\n".join(str(line) for line in address) if isinstance(address, (list, tuple)) else str(address)


_ISSUER_FIELDS = ("name", "vat_id", "registration_number", "email", "bank_name", "iban", "bic")


def set_issuer(connection: Connection, tenant: str, *, require_details: bool | None = None,
               **changes: object) -> Issuer:  # fmt: skip
    """Create or change ``tenant``'s issuer (only the given fields change; ``address`` replaces every line).
    Raises :class:`SetupError` naming the option when a field is invalid or the name or address is missing."""
    if not tenant:
        raise SetupError("--tenant must not be empty")
    current = load_issuers(connection, [tenant]).get(tenant)
    party = current.party if current else Party()
    fields = {k: v for k, v in changes.items() if v is not None}
    unknown = set(fields) - {*_ISSUER_FIELDS, "address"}
    if unknown:
        raise SetupError(f"unknown issuer field(s): {', '.join(sorted(unknown))}")
    if "address" in fields:
        fields["address"] = tuple(_joined(fields["address"]).splitlines())
    party, problems = normalise(msgspec.structs.replace(party, **fields))
    problems += check_issuer(party)
    if problems:
        raise SetupError("; ".join(problems))
    required = require_details if require_details is not None else bool(current and current.require_details)
    row = {"tenant": tenant, **{k: getattr(party, k) for k in _ISSUER_FIELDS}, "address": "\n".join(party.address),
           "require_details": int(required), "updated_ms": int(time.time() * 1000)}  # fmt: skip
    _upsert(connection, billing_issuers, row, ["tenant"])
    return Issuer(tenant=tenant, party=party, require_details=required)


def load_issuers(connection: Connection, tenants: list[str] | None = None) -> dict[str, Issuer]:
    """The issuers of ``tenants`` (all when None) that are configured, by tenant."""
    query = select(billing_issuers)
    if tenants is not None:
        query = query.where(billing_issuers.c.tenant.in_(tenants))
    found = {}
    for r in connection.execute(query):
        party = Party(address=tuple(r.address.splitlines()), **{k: getattr(r, k) for k in _ISSUER_FIELDS})
        found[r.tenant] = Issuer(tenant=r.tenant, party=party, require_details=bool(r.require_details))
    return found

"""Who an invoice is from and to: the issuer (seller) of a tenant and the customer (buyer) of an account. Pure.

Both are billing settings (``billing_issuers`` per tenant; the ``customer_*`` columns of ``billing_accounts``) and
are copied onto every invoice when it is issued (``invoices.seller`` / ``invoices.buyer``, JSON), so an issued
invoice prints and exports the details it was issued with, whatever is changed later.

Identifiers are checked with python-stdnum and stored in their compact form: a VAT id with its country prefix
(``DE136695976``), an IBAN (``DE89370400440532013000``), a BIC (``COBADEFFXXX``). Every problem names the option it
came from (``--vat-id``), so the command line can print it as it is.
"""

from __future__ import annotations

import unicodedata

import msgspec
from stdnum import bic, iban, vatin
from stdnum.exceptions import ValidationError

MAX_NAME = 200
MAX_ADDRESS_LINES = 6
MAX_TEXT = 100
MAX_EMAIL = 254


class Party(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A seller or a buyer as an invoice prints it and the ERP document carries it.

    Attributes:
        name: legal name ("ACME Telecom GmbH", "Łukasz Żółć").
        address: postal address lines, in printing order (at most 6).
        vat_id: VAT identification number with its country prefix, compact ("" = none).
        registration_number: company register entry ("HRB 12345 B, Amtsgericht Charlottenburg").
        email: billing contact.
        bank_name, iban, bic: where to pay (an issuer's).
    """

    name: str = ""
    address: tuple[str, ...] = ()
    vat_id: str = ""
    registration_number: str = ""
    email: str = ""
    bank_name: str = ""
    iban: str = ""
    bic: str = ""

    @property
    def empty(self) -> bool:
        return self == NOBODY

    @property
    def complete(self) -> bool:
        """Has the minimum an invoice needs: a name and an address."""
        return bool(self.name and self.address)


NOBODY = Party()


class Issuer(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's seller details and whether its invoices must carry full details.

    Attributes:
        tenant: whose invoices these are.
        party: the seller printed on them.
        require_details: an invoice of this tenant whose customer has no name or address stays DRAFT.
    """

    tenant: str
    party: Party
    require_details: bool = False


def encode(party: Party) -> str:
    """The JSON stored on an invoice ("" when nobody is configured)."""
    return "" if party.empty else msgspec.json.encode(party).decode()


def decode(text: str | None) -> Party:
    return msgspec.json.decode(text, type=Party) if text else NOBODY


def _printable(text: str, option: str, limit: int) -> list[str]:
    if len(text) > limit:
        return [f"{option}: at most {limit} characters, got {len(text)}"]
    if any(unicodedata.category(c).startswith("C") for c in text):
        return [f"{option}: control characters are not allowed ({text!r})"]
    return []


def _identifier(value: str, option: str, module) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    if not value:
        return "", []
    try:
        return module.validate(value), []
    except ValidationError as error:
        return value, [f"{option}: {value!r} is not a valid {module.__name__.rsplit('.', 1)[-1].upper()} ({error})"]


def normalise(party: Party) -> tuple[Party, list[str]]:
    """``party`` with text trimmed and identifiers compacted, and every problem with it (empty = fine)."""
    name = party.name.strip()
    address = tuple(line.strip() for line in party.address if line.strip())
    problems = _printable(name, "--name", MAX_NAME)
    if len(address) > MAX_ADDRESS_LINES:
        problems.append(f"--address: at most {MAX_ADDRESS_LINES} lines, got {len(address)}")
    for line in address:
        problems += _printable(line, "--address", MAX_TEXT)
    registration, bank_name, email = (party.registration_number.strip(), party.bank_name.strip(),
                                      party.email.strip())  # fmt: skip
    problems += _printable(registration, "--registration-number", MAX_TEXT)
    problems += _printable(bank_name, "--bank-name", MAX_TEXT)
    problems += _printable(email, "--email", MAX_EMAIL)
    if email and (email.count("@") != 1 or " " in email or "." not in email.partition("@")[2]):
        problems.append(f"--email: {email!r} is not an e-mail address")
    vat_id, found = _identifier(party.vat_id.strip(), "--vat-id", vatin)
    problems += found
    account, found = _identifier(party.iban.strip(), "--iban", iban)
    problems += found
    code, found = _identifier(party.bic.strip(), "--bic", bic)
    problems += found
    clean = Party(name=name, address=address, vat_id=vat_id, registration_number=registration, email=email,
                  bank_name=bank_name, iban=account, bic=code)  # fmt: skip
    return clean, problems


def check_issuer(party: Party) -> list[str]:
    """What a seller needs beyond valid fields: a legal name and an address."""
    problems = [] if party.name else ["--name: the issuer's legal name is required"]
    if not party.address:
        problems.append("--address: the issuer's address is required (repeat --address for each line)")
    if party.bic and not party.iban:
        problems.append("--bic: give the --iban it belongs to")
    return problems


def printable_lines(party: Party) -> list[str]:
    """The party as an invoice prints it: name, address lines, then identifiers and bank details."""
    lines = [party.name, *party.address] if party.name else list(party.address)
    if party.vat_id:
        lines.append(f"VAT ID {party.vat_id}")
    if party.registration_number:
        lines.append(party.registration_number)
    if party.email:
        lines.append(party.email)
    return lines


def bank_lines(party: Party) -> list[str]:
    """Where to pay, as printed: ``["Bank Example Bank", "IBAN DE89 3704 …", "BIC COBADEFFXXX"]`` ([] without an
    IBAN)."""
    if not party.iban:
        return []
    lines = [f"Bank {party.bank_name}"] if party.bank_name else []
    lines.append(f"IBAN {iban.format(party.iban)}")
    if party.bic:
        lines.append(f"BIC {party.bic}")
    return lines

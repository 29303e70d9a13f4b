"""xDRs → billable items (main items with their dependent records), and the batch file. Pure.

Record types (SAP Convergent Invoicing's):

- ``IT`` main item: every xDR that is not a dependent one — usage (a call, an event), an adjustment, a top-up, a
  payment, a refund, a tax with no main item in the batch. Amount = the xDR's cost as the customer owes it
  (payments negative), exact to the micro-unit (6 decimals: the receiver rounds as it invoices).
- ``TX`` tax record: the tax taken at a top-up (the TAX xDR ``<top-up id>:tax``) under its top-up; a TAX xDR that is
  a main item of its own carries its own TX record. Tax code, rate, tax amount.
- ``PY`` payment record, under a money movement (top-up, payment, refund): its amount and reference.
- ``TT`` text record, where the xDR has a text: its description, or for a call the number called.

A main item's class is :meth:`ClassMap.lookup` of its service and ledger code; its dependent records go with it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from settlement.billable.classes import ClassMap
from settlement.billing.amounts import D
from settlement.entries import TAX_SUFFIX
from settlement.vocabulary import RecordType

UNITS = {"voice": "S", "data": "BYTE", "message": "EA"}  # seconds, octets, messages
FIELDS = ("batch", "record_type", "item_class", "item_id", "main_item", "customer_code", "account", "service",
          "ledger_code", "start", "end", "quantity", "unit", "amount", "currency", "tax_code", "tax_rate",
          "tax_amount", "reference", "text")  # fmt: skip


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One xDR of a batch: its class and the main item it belongs to (itself for a main item)."""

    xdr_id: str
    xdr_period: str
    item_class: str
    main_item: str


class Grouping(msgspec.Struct, frozen=True, kw_only=True):
    """The batch's items in file order, and the xDRs no class rule matched: (id, service, ledger code)."""

    items: tuple[Item, ...]
    unclassified: tuple[tuple[str, str, str], ...]


def _parent(row: Any, ids: set[str]) -> str | None:
    if row.record_type == RecordType.TAX and row.id.endswith(TAX_SUFFIX):
        parent = row.id[: -len(TAX_SUFFIX)]
        return parent if parent in ids else None
    return None


def group(rows: Iterable[Any], classes: ClassMap) -> Grouping:
    """Main items and their dependents, classified, in file order (class, account, start, id)."""
    rows = list(rows)
    ids = {r.id for r in rows}
    dependents: dict[str, list[Any]] = {}
    mains = []
    for row in rows:
        parent = _parent(row, ids)
        if parent is None:
            mains.append(row)
        else:
            dependents.setdefault(parent, []).append(row)
    items, unclassified = [], []
    classified = []
    for main in mains:
        item_class = classes.lookup(main.service, main.ledger_code)
        if item_class is None:
            unclassified.append((main.id, main.service, main.ledger_code))
            unclassified.extend((d.id, d.service, d.ledger_code) for d in dependents.get(main.id, []))
        else:
            classified.append((item_class, main))
    for item_class, main in sorted(classified, key=lambda c: (c[0], c[1].account, c[1].start_ms, c[1].id)):
        for row in (main, *sorted(dependents.get(main.id, []), key=lambda d: d.id)):
            items.append(Item(xdr_id=row.id, xdr_period=row.period, item_class=item_class, main_item=main.id))
    return Grouping(items=tuple(items), unclassified=tuple(sorted(unclassified)))


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _money(micros: int | None) -> str:
    return "" if micros is None else f"{D(micros):.6f}"


def records(items: Iterable[Item], rows: Mapping[str, Any], customers: Mapping[str, str]) -> list[dict[str, str]]:
    """The file's records for ``items`` (``rows``: the xDRs by id; ``customers``: account → customer code)."""
    out = []
    for item in items:
        row = rows[item.xdr_id]
        base = {"item_class": item.item_class, "main_item": item.main_item,
                "customer_code": customers.get(row.account, row.account), "account": row.account,
                "service": row.service, "ledger_code": row.ledger_code, "currency": row.currency,
                "start": _time(row.start_ms), "end": _time(row.end_ms)}  # fmt: skip
        main = item.xdr_id == item.main_item
        if main:
            out.append({**base, "record_type": "IT", "item_id": row.id, "quantity": str(row.units),
                        "unit": UNITS.get(row.service, ""), "amount": _money(row.cost)})  # fmt: skip
        if row.record_type == RecordType.TAX:
            rate = "" if row.tax_rate_ppm is None else f"{D(row.tax_rate_ppm * 100):f}".rstrip("0").rstrip(".")
            out.append({**base, "record_type": "TX", "item_id": row.id, "amount": _money(row.cost),
                        "tax_code": row.tax_code or "", "tax_rate": rate,
                        "tax_amount": _money(row.tax_amount if row.tax_amount is not None else row.cost)})  # fmt: skip
        if main and row.record_type == RecordType.PAYMENT:
            out.append({**base, "record_type": "PY", "item_id": row.id, "amount": _money(row.cost),
                        "reference": row.session_id})  # fmt: skip
        text = row.description or (f"to {row.called}" if row.called else "")
        if main and text:
            out.append({**base, "record_type": "TT", "item_id": row.id, "text": text})
    return out


def batch_label(batch_id: int, simulated: bool) -> str:
    """``B00000007`` for a real batch, ``S00000007`` for a simulated one."""
    return f"{'S' if simulated else 'B'}{batch_id:08d}"


def file_bytes(label: str, rows: Iterable[dict[str, str]]) -> bytes:
    """The batch file: CSV, one record a line, every line naming its batch."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FIELDS, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "batch": label})
    return buffer.getvalue().encode()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()

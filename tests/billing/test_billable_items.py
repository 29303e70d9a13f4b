"""Billable-item export (SAP Convergent Invoicing shape) on a real store: main items with their tax, payment and text
records by class, excepted and unclassified items left out with reasons, a simulation that changes nothing, the
idempotent re-export of an open batch, and the confirmation that bills (or excepts) the items — once."""

from __future__ import annotations

import csv
import io
import json

import pytest
from billing_helpers import add_account, add_xdrs, euros, ms, xdr
from click.testing import CliRunner
from sqlalchemy import func, select, update

from occ.cli import main
from settlement.billable.batches import BatchError, Confirmation, Rejection, confirm, export
from settlement.billable.classes import ClassMapError, parse
from settlement.billable.records import sha256
from settlement.billing.setup import set_account
from settlement.store.schema import billable_items, simulated_billable_items, xdrs

CLASSES = "voice:400000001=VOICE_LOCAL, message:*=MESSAGING, *:400000009=PREPAID"


def january(store):
    add_account(store, "a")
    add_account(store, "p")
    with store.begin() as c:
        set_account(c, "a", customer_code="C-A")
    jan = ms(2026, 1, 10)
    add_xdrs(store, [
        xdr("a", "session", euros("1.234567"), "400000001", jan, id="call", units=61, called="+442071234567"),
        xdr("a", "event_charge", euros("0.1"), "400000002", jan + 1, id="sms", units=1),
        xdr("a", "adjustment", euros("-0.5"), "400000011", jan + 2, id="goodwill", description="Goodwill"),
        xdr("p", "topup", euros("-10"), "400000009", jan, id="p-1", session_id="TOPUP-77"),
        xdr("p", "topup_tax", euros("1.666667"), "470000001", jan, id="p-1:tax", record_type="TAX", tax_code="S20",
            tax_rate_ppm=200_000, tax_amount=euros("1.666667")),
        xdr("a", "session", euros("1"), "", jan + 3, id="nocode", status="RAW_EXCEPTED",
            status_reason="no ledger code"),
        xdr("a", "session", euros("2"), "400000001", ms(2026, 2, 2), id="february"),
    ])  # fmt: skip


def statuses(store):
    with store.connect() as c:
        return {r.id: r.status for r in c.execute(select(xdrs.c.id, xdrs.c.status))}


def lines(content):
    return [(r["record_type"], r["item_class"], r["item_id"], r["main_item"], r["customer_code"], r["amount"],
             r["quantity"], r["unit"], r["tax_code"], r["tax_rate"], r["tax_amount"], r["reference"], r["text"])
            for r in csv.DictReader(io.StringIO(content.decode()))]  # fmt: skip


EXPECTED = [  # type, class, item, main item, customer, amount, quantity, unit, tax code, rate, tax, reference, text
    ("IT", "MESSAGING", "sms", "sms", "C-A", "0.100000", "1", "EA", "", "", "", "", ""),
    ("IT", "PREPAID", "p-1", "p-1", "p", "-10.000000", "0", "", "", "", "", "", ""),
    ("PY", "PREPAID", "p-1", "p-1", "p", "-10.000000", "", "", "", "", "", "TOPUP-77", ""),
    ("TX", "PREPAID", "p-1:tax", "p-1", "p", "1.666667", "", "", "S20", "20", "1.666667", "", ""),
    ("IT", "VOICE_LOCAL", "call", "call", "C-A", "1.234567", "61", "S", "", "", "", "", ""),
    ("TT", "VOICE_LOCAL", "call", "call", "C-A", "", "", "", "", "", "", "", "to +442071234567"),
]


def test_export_confirm_and_the_statuses(store):
    january(store)
    classes = parse(CLASSES)
    before = statuses(store)

    simulated = export(store, "2026-01", classes, simulate=True)
    assert (simulated.label, simulated.items, simulated.main_items) == ("S00000001", 4, 3)
    assert lines(simulated.content) == EXPECTED
    assert statuses(store) == before  # a simulation changes no status

    real = export(store, "2026-01", classes)
    assert (real.label, real.items, real.reused) == ("B00000002", 4, False)
    assert lines(real.content) == EXPECTED
    assert [(e.id, e.status, e.reason) for e in real.excepted] == [("nocode", "RAW_EXCEPTED", "no ledger code")]
    assert real.unclassified == (("goodwill", "", "400000011"),)  # no rule for an adjustment on 400000011
    assert statuses(store) == before  # nothing is billed before the receiver confirms
    with store.connect() as c:
        counts = [c.execute(select(func.count()).select_from(t)).scalar() for t in (billable_items,
                                                                                   simulated_billable_items)]
    assert counts == [4, 4]  # billed and simulated items stored apart

    add_xdrs(store, [xdr("a", "session", euros("0.3"), "400000001", ms(2026, 1, 20), id="late-call")])
    again = export(store, "2026-01", classes)  # the open batch again, byte for byte; the new call waits
    assert (again.label, again.reused, again.content) == ("B00000002", True, real.content)

    with pytest.raises(BatchError, match="sha256"):
        confirm(store, Confirmation(batch="B00000002", sha256="0" * 64))
    with pytest.raises(BatchError, match="not a main item"):
        confirm(store, Confirmation(batch="B00000002", sha256=sha256(real.content),
                                    rejected=(Rejection("p-1:tax", "no"),)))  # fmt: skip
    with pytest.raises(BatchError, match="simulated"):
        confirm(store, Confirmation(batch="S00000001", sha256=sha256(simulated.content)))
    assert statuses(store)["call"] == "BILLABLE"

    with store.begin() as c:  # someone excepted the SMS after the export
        c.execute(update(xdrs).where(xdrs.c.id == "sms").values(status="BILLABLE_EXCEPTED", status_reason="dispute"))
    done = confirm(store, Confirmation(batch="B00000002", sha256=sha256(real.content),
                                       rejected=(Rejection("p-1", "unknown contract account"),)))  # fmt: skip
    assert (done.billed, done.rejected, done.changed, done.already) == (1, 2, ("sms",), False)
    after = statuses(store)
    assert {k: after[k] for k in ("call", "sms", "p-1", "p-1:tax", "goodwill", "nocode", "february", "late-call")} == {
        "call": "BILLED", "sms": "BILLABLE_EXCEPTED", "p-1": "BILLABLE_EXCEPTED", "p-1:tax": "BILLABLE_EXCEPTED",
        "goodwill": "BILLABLE", "nocode": "RAW_EXCEPTED", "february": "BILLABLE", "late-call": "BILLABLE"}  # fmt: skip
    with store.connect() as c:
        reason = c.execute(select(xdrs.c.status_reason).where(xdrs.c.id == "p-1")).scalar()
    assert reason == "rejected by the receiving system (batch B00000002): unknown contract account"

    twice = confirm(store, Confirmation(batch="B00000002", sha256=sha256(real.content)))
    assert (twice.billed, twice.rejected, twice.already) == (1, 2, True)
    assert statuses(store) == after

    following = export(store, "2026-01", classes)  # the month's next batch: what is still BILLABLE and classified
    assert following.label == "B00000003"
    assert [(x[0], x[2]) for x in lines(following.content)] == [("IT", "late-call")]


def test_class_rules():
    rules = parse("voice:400000001=LOCAL, voice:*=VOICE, *:400000009=PREPAID, *:*=OTHER")
    asked = (("voice", "400000001"), ("voice", "400000002"), ("", "400000009"), ("data", "400000001"))
    assert [rules.lookup(s, c) for s, c in asked] == ["LOCAL", "VOICE", "PREPAID", "OTHER"]
    assert parse("").lookup("voice", "1") == "OCC"
    for bad, message in (("voice=X", "not service:ledger_code=CLASS"), ("voice:1=lower", "not service"),
                         ("voice:1=A, voice:1=B", "mapped twice")):  # fmt: skip
        with pytest.raises(ClassMapError, match=message):
            parse(bad)


def test_occ_export_billable_items_commands(store, db_url, tmp_path, monkeypatch):
    january(store)
    config = tmp_path / "occ.toml"
    config.write_text(f'billable_item_classes = "{CLASSES}, *:400000011=ADJUSTMENTS"\n')
    runner = CliRunner()
    flags = ["--config", str(config), "--db-url", db_url]
    out = tmp_path / "b.csv"
    result = runner.invoke(main, ["export", "billable-items", "--period", "2026-01", "-o", str(out), *flags])
    assert result.exit_code == 0, result.output
    assert "not exported: nocode (a) RAW_EXCEPTED: no ledger code" in result.output
    assert "2026-01: batch B00000001: 4 main items, 5 xDRs (1 excepted, 0 unclassified left out)" in result.output
    assert ("IT", "ADJUSTMENTS", "goodwill") in [(x[0], x[1], x[2]) for x in lines(out.read_bytes())]
    assert statuses(store)["call"] == "BILLABLE"
    monkeypatch.chdir(tmp_path)  # without -o: the batch's own name, in the current directory
    result = runner.invoke(main, ["export", "billable-items", "--period", "2026-01", "--simulate", *flags])
    assert result.exit_code == 0, result.output
    assert "simulated batch S00000002" in result.output
    assert (tmp_path / "S00000002.csv").read_bytes().startswith(b"batch,")

    answer = tmp_path / "confirmation.json"
    answer.write_text(json.dumps({"batch": "B00000001", "sha256": sha256(out.read_bytes()), "rejected": []}))
    result = runner.invoke(main, ["export", "billable-items", "confirm", str(answer), *flags])
    assert result.exit_code == 0, result.output
    assert "batch B00000001: 5 billed, 0 rejected, 0 no longer billable" in result.output
    assert statuses(store)["goodwill"] == "BILLED"

    result = runner.invoke(main, ["export", "billable-items", "--period", "2026-13", "-o", str(out), *flags])
    assert result.exit_code == 2 and "--period" in result.output
    result = runner.invoke(main, ["export", "--once", *flags])  # the outbox sender still wants its ERP
    assert result.exit_code == 2 and "--erp-url" in result.output  # neither the flag nor erp.url

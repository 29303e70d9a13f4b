"""`occ xdr except|restore|show|list` on a real SQL store (SQLite and PostgreSQL), with xDRs booked from entries."""

from __future__ import annotations

import pytest
from books import sms
from click.testing import CliRunner
from sqlalchemy import select, update

from occ.cli import main
from settlement.store.schema import xdrs
from settlement.xdr_status import StatusError, _set, except_xdr, find, list_xdrs, restore_xdr


def status(engine, key: str) -> tuple[str, str]:
    with engine.connect() as sql:
        row = find(sql, key)
    return row.status, row.status_reason


def occ(db_url: str, tmp_path, *args: str):
    return CliRunner().invoke(main, [*args, "--db-url", db_url, "--data-dir", str(tmp_path)], catch_exceptions=False)


def test_except_and_restore_a_billable_xdr(store, db_url, tmp_path):
    key = sms(store, "s001:1-0")
    other = sms(store, "s001:2-0", account="bob")
    assert status(store, key) == ("BILLABLE", "")

    result = occ(db_url, tmp_path, "xdr", "except", key, "--reason", "disputed by the customer")
    assert result.exit_code == 0 and "BILLABLE → BILLABLE_EXCEPTED" in result.output
    assert status(store, key) == ("BILLABLE_EXCEPTED", "disputed by the customer")
    # Excepted items are not in the BILLABLE set billing reads.
    assert [r.id for r in list_xdrs(store, status="BILLABLE")] == [other]
    listed = occ(db_url, tmp_path, "xdr", "list", "--status", "BILLABLE_EXCEPTED", "--period", "2026-01")
    assert listed.exit_code == 0 and key in listed.output and "disputed by the customer" in listed.output
    assert occ(db_url, tmp_path, "xdr", "list", "--status", "BILLABLE_EXCEPTED", "--account", "bob").stdout == ""

    with pytest.raises(StatusError, match="already BILLABLE_EXCEPTED"):
        except_xdr(store, key, "again")
    change = restore_xdr(store, key, "dispute withdrawn")
    assert (change.before, change.after) == ("BILLABLE_EXCEPTED", "BILLABLE")
    assert status(store, key) == ("BILLABLE", "restored: dispute withdrawn")
    with pytest.raises(StatusError, match="not excepted"):
        restore_xdr(store, key, "twice")
    with pytest.raises(StatusError, match="--reason is required"):
        except_xdr(store, key, "   ")

    shown = occ(db_url, tmp_path, "xdr", "show", key)
    assert "cost:           0.050000" in shown.output and "status:         BILLABLE" in shown.output
    missing = occ(db_url, tmp_path, "xdr", "show", "s009:9-9")
    assert missing.exit_code == 1 and "no xDR 's009:9-9'" in missing.output


def test_a_billed_xdr_cannot_be_excepted(store, db_url, tmp_path):
    key = sms(store, "s001:1-0")
    with store.begin() as sql:
        sql.execute(update(xdrs).where(xdrs.c.id == key).values(status="BILLED", invoice_id=42))
    result = occ(db_url, tmp_path, "xdr", "except", key, "--reason", "too late")
    assert result.exit_code == 1 and "BILLED on invoice 42" in result.output and "occ rerate" in result.output
    assert status(store, key) == ("BILLED", "")


def test_restoring_a_raw_excepted_xdr_checks_it_again(store, db_url, tmp_path):
    key = sms(store, "s001:1-0", ledger="")
    assert status(store, key) == ("RAW_EXCEPTED", "no ledger code")

    result = occ(db_url, tmp_path, "xdr", "restore", key, "--reason", "looked at it")
    assert result.exit_code == 1 and "RAW_EXCEPTED → RAW_EXCEPTED (no ledger code)" in result.output
    bad = occ(db_url, tmp_path, "xdr", "restore", key, "--reason", "fix", "--ledger", "0400")
    assert bad.exit_code == 1 and "without a leading zero" in bad.output

    result = occ(db_url, tmp_path, "xdr", "restore", key, "--reason", "SMS ledger", "--ledger", "400000004")
    assert result.exit_code == 0 and "RAW_EXCEPTED → BILLABLE" in result.output
    with store.connect() as sql:
        row = find(sql, key)
    assert (row.status, row.status_reason, row.ledger_code) == ("BILLABLE", "restored: SMS ledger", "400000004")


def test_a_change_made_meanwhile_is_never_overwritten(store):
    key = sms(store, "s001:1-0")
    with store.connect() as sql:
        stale = find(sql, key)  # read as BILLABLE …
    except_xdr(store, key, "first")  # … and another operator excepts it meanwhile
    with pytest.raises(StatusError, match="changed meanwhile"), store.begin() as sql:
        _set(sql, stale, "BILLABLE_EXCEPTED", "second", stale.ledger_code)
    with store.connect() as sql:
        assert sql.execute(select(xdrs.c.status_reason).where(xdrs.c.id == key)).scalar() == "first"

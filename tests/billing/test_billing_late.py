"""Late items (issue 10): a January call settled after January was invoiced lands on February's invoice, marked late.

Real online core → real Redis streams → Drain → real SQL store (SQLite, then PostgreSQL) → bill runs. Calls at the
example tariff's Monday peak: 150 s cost 0.375000, 61 s cost 0.300834.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from click.testing import CliRunner
from online_app import MONDAY_PEAK, serving, session, settle_everything, voice
from sqlalchemy import select

from occ.cli import main
from settlement.billing import document
from settlement.billing.run import run
from settlement.store.schema import invoice_lines, invoices, preview_invoice_lines, xdrs

JANUARY, FEBRUARY, MARCH = (int(datetime(2026, m, 1, tzinfo=UTC).timestamp() * 1000) for m in (1, 2, 3))
TWO_WEEKS_LATER = MONDAY_PEAK + 14 * 86_400  # Monday 2026-01-19 09:00 UTC, still January, still peak


def lines_of(sql, invoice_id: int, table=invoice_lines) -> list[tuple]:
    query = select(table.c.category, table.c.description, table.c.count, table.c.units, table.c.amount)
    return [tuple(r) for r in sql.execute(query.where(table.c.invoice_id == invoice_id).order_by(table.c.line_number))]


async def test_a_january_call_settled_after_january_was_invoiced_is_billed_late_in_february(
    redis_url, db_url, store, tmp_path
):
    async with serving(redis_url, tmp_path) as client:
        await client.account("carol", balance=10_000_000)  # a top-up of today: today's period, not January's
        c = client.charging
        await c.StartSession(session("call-1", 0, "carol", voice(requested=150)))
        await c.EndSession(session("call-1", 1, "carol", voice(used=150)))
        await settle_everything(client, redis_url, store)
        first = run(store, date(2026, 2, 1))  # closes January: call-1
        # call-2 started in January too, but its close reaches settlement only now.
        await c.StartSession(session("call-2", 0, "carol", voice(requested=60), at=TWO_WEEKS_LATER))
        await c.EndSession(session("call-2", 1, "carol", voice(used=61), at=TWO_WEEKS_LATER))
        await settle_everything(client, redis_url, store)

    assert (first.issued, first.drafts) == (1, 0)
    with store.connect() as sql:
        january = sql.execute(select(invoices).where(invoices.c.period_start_ms == JANUARY)).one()
        assert lines_of(sql, january.id)[0] == ("CHARGE", "Usage voice (400000001)", 1, 150, 380_000)
        late_call = sql.execute(select(xdrs).where(xdrs.c.session_id == "call-2")).one()
    # Its own period, January, is invoiced: it is still BILLABLE, in the period of its start, and not late yet.
    assert (late_call.status, late_call.period, late_call.late_period_start_ms) == ("BILLABLE", "2026-01", None)

    preview = run(store, date(2026, 3, 1), preview=True)  # a dry run shows it late and marks nothing
    with store.connect() as sql:
        assert lines_of(sql, preview.outcomes[0].invoice_id, preview_invoice_lines) == [
            ("CHARGE", "Late usage voice (400000001) of 2026-01-01", 1, 61, 300_000)]  # fmt: skip
        assert sql.execute(select(xdrs.c.late_period_start_ms).where(xdrs.c.id == late_call.id)).scalar() is None

    second = run(store, date(2026, 3, 1))
    assert (second.issued, second.drafts) == (1, 0)
    with store.connect() as sql:
        february = sql.execute(select(invoices).where(invoices.c.period_start_ms == FEBRUARY)).one()
        billed = sql.execute(select(xdrs).where(xdrs.c.id == late_call.id)).one()
        february_lines = lines_of(sql, february.id)
        january_after = sql.execute(select(invoices).where(invoices.c.id == january.id)).one()
        topup = sql.execute(select(xdrs.c.status, xdrs.c.period).where(xdrs.c.kind == "topup")).one()
    assert february_lines == [("CHARGE", "Late usage voice (400000001) of 2026-01-01", 1, 61, 300_000)]
    assert (february.late_items, february.xdr_count, february.charges) == (1, 1, 300_000)
    assert february.brought_forward == january.carried_forward == 380_000
    assert february.carried_forward == 680_000
    assert (billed.status, billed.invoice_id) == ("BILLED", february.id)
    assert (billed.late_period_start_ms, billed.late_period_end_ms) == (JANUARY, FEBRUARY)
    assert (january_after.xdr_count, january_after.charges, january_after.late_items) == (1, 380_000, 0)
    assert tuple(topup) == ("BILLABLE", datetime.now(UTC).strftime("%Y-%m"))  # waits for its own period

    with store.connect() as sql:
        shown = document.text(document.load(sql, february.id))
    assert "1 item (1 late: billed after their period was invoiced)" in shown
    result = CliRunner().invoke(main, ["xdr", "show", late_call.id, "--db-url", db_url, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (f"late:           yes: its period 2026-01-01 00:00 – 2026-02-01 00:00 UTC had been invoiced; billed on "
            f"invoice id {february.id}") in result.output  # fmt: skip

    third = run(store, date(2026, 4, 1))  # March: nothing late is billed twice
    with store.connect() as sql:
        march = sql.execute(select(invoices).where(invoices.c.period_start_ms == MARCH)).one()
    assert (third.issued, march.xdr_count, march.late_items, march.carried_forward) == (1, 0, 0, 680_000)

"""The README's own example, end to end, as printed there (issue 10): from its call to its invoice.

Every ``$ .venv/bin/occ …`` command of README.md runs, in the README's order, through the real command line against
a real server (the online core in process, a real redis-server) and a real store (SQLite, then PostgreSQL); where
the README shows what a command prints, the command must print exactly that (the issue and due dates excepted: they
are the day the example runs). The README's settings for the store and the server (``./data``, 127.0.0.1:50051) are
given through the environment, so the commands run as written.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from online_app import serving
from sqlalchemy import select

from occ.cli import main
from settlement.billing.cycle import local_midnight_ms
from settlement.store.schema import invoice_lines, invoices, xdrs

README = Path(__file__).resolve().parents[2] / "README.md"
PROMPT = "$ .venv/bin/occ "
CALL_START_MS = int(datetime(2026, 1, 5, 9, tzinfo=UTC).timestamp() * 1000)  # --at 2026-01-05T09:00:00Z


def readme_session() -> list[tuple[list[str], str]]:
    """Every ``$ .venv/bin/occ …`` command in README.md's code blocks, in order, with the text shown under it."""
    steps: list[tuple[list[str], list[str]]] = []
    current: list[str] | None = None
    in_block = False
    lines = iter(README.read_text().splitlines())
    for line in lines:
        if line.startswith("```"):
            in_block, current = not in_block, None
        elif in_block and line.startswith(PROMPT):
            command = line.removeprefix(PROMPT)
            while command.endswith("\\"):  # continued on the next line, as a shell reads it
                command = command.removesuffix("\\") + next(lines)
            current = []
            steps.append((shlex.split(command), current))
        elif in_block and current is not None:
            current.append(line)
    return [(args, "".join(f"{line}\n" for line in shown)) for args, shown in steps]


def undated(text: str) -> str:
    text = re.sub(r"issued \d{4}-\d\d-\d\d;", "issued <today>;", text)
    return re.sub(r" by \d{4}-\d\d-\d\d\n", " by <in 14 days>\n", text)


async def test_the_readme_bills_its_own_call(redis_url, db_url, store, tmp_path):
    steps = readme_session()
    commands = [args[:2] for args, _ in steps]
    assert commands == [["account", "create"], ["account", "topup"], ["call", "alice"], ["settle", "--once"],
                        ["bill", "tax-profile"], ["bill", "issuer"], ["bill", "account"], ["bill", "run"],
                        ["bill", "run"], ["bill", "show"]]  # fmt: skip
    assert steps[2][0][-2:] == ["--at", "2026-01-05T09:00:00Z"] and steps[-2][0][-2:] == ["--date", "2026-02-01"]

    async with serving(redis_url, tmp_path) as client:
        env = {"OCC_SERVER": client.address, "OCC_ADMIN_SERVER": client.address, "OCC_TOKEN": client.token,
               "OCC_REDIS_URL": redis_url, "OCC_DB_URL": db_url, "OCC_DATA_DIR": str(tmp_path)}  # fmt: skip
        for args, shown in steps:
            result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env, catch_exceptions=False)
            assert result.exit_code == 0, (args, result.output)
            if shown:
                assert undated(result.stdout) == undated(shown), f"occ {shlex.join(args)} prints otherwise"
        printed = result.stdout  # occ bill show 00000001

    # The invoice holds the call, at its exact price, in the period of its start: January in Berlin.
    with store.connect() as sql:
        invoice = sql.execute(select(invoices).where(invoices.c.number == 1)).one()
        lines = sql.execute(select(invoice_lines.c.category, invoice_lines.c.description, invoice_lines.c.count,
                                   invoice_lines.c.units, invoice_lines.c.amount)
                            .where(invoice_lines.c.invoice_id == invoice.id)
                            .order_by(invoice_lines.c.line_number)).all()  # fmt: skip
        call = sql.execute(select(xdrs).where(xdrs.c.kind == "session")).one()
    berlin = "Europe/Berlin"
    assert (invoice.period_start_ms, invoice.period_end_ms, invoice.state) == (
        local_midnight_ms(datetime(2026, 1, 1).date(), berlin), local_midnight_ms(datetime(2026, 2, 1).date(), berlin),
        "COMPLETE")  # fmt: skip
    assert (call.cost, call.units, call.start_ms, call.period) == (375_000, 150, CALL_START_MS, "2026-01")
    assert (call.status, call.invoice_id, call.late_period_start_ms) == ("BILLED", invoice.id, None)
    assert [tuple(line) for line in lines] == [
        ("CHARGE", "Usage voice (400000001)", 1, 150, 380_000),  # 0.375 half up
        ("TAX", "Tax S20 20 % on 400000001", 1, 0, 80_000),  # 0.075 half up
        ("ROUNDING", "Rounding difference", 0, 0, -10_000),  # the exact 0.45 carried, the lines make 0.46
    ]
    assert (invoice.charges, invoice.tax, invoice.carried_forward, invoice.late_items) == (380_000, 80_000, 450_000, 0)
    assert re.search(r"^  Charges +0\.38$", printed, re.MULTILINE)
    assert "Łukasz Żółć" in invoice.buyer and "ACME Telecom GmbH" in invoice.seller  # the parties, as issued

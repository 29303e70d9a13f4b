"""Benchmark of a billing run: 1,000,000 xDRs of 10,000 accounts on SQLite, documents without PDF; then PDFs.

Run with ``.venv/bin/python benchmarks/bench_billing.py`` (``--help`` for the options). In one run it

1. creates a fresh SQLite store in a temporary directory and bulk-loads the accounts (a quarter each taxed
   VAT-exclusive 20 %, VAT-inclusive 19 %, exempt, prepaid 20 %) and their January xDRs: per account 90 % voice
   calls over three ledger codes, SMS, SMS refunds, a top-up or payment and an adjustment;
2. times the baseline: a bare ``SELECT`` of every column billing reads of all the period's xDRs, fetched to Python;
3. times ``run(date 2026-02-01)``: every account's invoice issued (in transactions of 100 invoices, a savepoint
   each: number, xDRs marked BILLED, taxation xDRs, lines, ERP document in the outbox), without PDFs;
4. times a second run of the same date (it must issue nothing) and PDF rendering of a sample of invoices;

prints the figures with the ratio to the baseline and writes them to ``benchmarks/results/billing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from settlement.billing import document
from settlement.billing.issue import ITEM_COLUMNS
from settlement.billing.pdf import render
from settlement.billing.run import run
from settlement.billing.setup import set_issuer, set_tax_profile
from settlement.billing.tax import TaxProfile
from settlement.store.database import open_store
from settlement.store.migrate import upgrade
from settlement.store.schema import invoices, xdrs

JAN = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
MONTH_MS = 31 * 86_400_000
PROFILES = (
    TaxProfile(name="VAT20", mode="EXCLUSIVE", rate_ppm=200_000, tax_code="S20", tax_ledger_code="470000001"),
    TaxProfile(name="VAT19I", mode="INCLUSIVE", rate_ppm=190_000, tax_code="S19", tax_ledger_code="470000002"),
    TaxProfile(name="EXEMPT", mode="EXEMPT", rate_ppm=0, tax_code="E0", tax_ledger_code=""),
    TaxProfile(name="PRE20", mode="PREPAID", rate_ppm=200_000, tax_code="S20", tax_ledger_code="470000001"),
)
XDR_COLUMNS = [c.name for c in xdrs.columns]


def insert_accounts(cursor, numbers: range) -> None:  # type: ignore[no-untyped-def]
    """Bulk-insert the EUR accounts ``acc<number, 6 digits>`` (a raw sqlite3 cursor, in the caller's transaction)."""
    cursor.executemany(
        "INSERT INTO accounts (account, currency, opening_balance, first_seen_ms) VALUES (?, 'EUR', 0, ?)",
        ((f"acc{a:06d}", JAN) for a in numbers),
    )


def populate(engine, n_accounts: int, per_account: int, seed: int) -> int:
    """Bulk-load accounts, billing settings and xDRs with the raw sqlite3 driver (one transaction)."""
    rng = random.Random(seed)
    with engine.begin() as connection:
        for profile in PROFILES:
            set_tax_profile(connection, profile)
        set_issuer(connection, "default", name="ACME Telecom GmbH", address=("Friedrichstraße 123", "10117 Berlin"),
                   vat_id="DE136695976", iban="DE89370400440532013000", bic="COBADEFFXXX")  # fmt: skip
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        insert_accounts(cursor, range(n_accounts))
        cursor.executemany(
            "INSERT INTO billing_accounts (account, tenant, customer_code, customer_class, tax_profile, billing_day, "
            "timezone, updated_ms, customer_name, customer_address) VALUES (?, 'default', ?, '', ?, 1, 'UTC', 0, ?, ?)",
            ((f"acc{a:06d}", f"C{a:06d}", PROFILES[a % 4].name, f"Łukasz Żółć {a}", "ul. Floriańska 1\n31-019 Kraków")
             for a in range(n_accounts)),
        )
        placeholders = ", ".join("?" for _ in XDR_COLUMNS)
        sql = f"INSERT INTO xdrs ({', '.join(XDR_COLUMNS)}) VALUES ({placeholders})"
        n = 0
        for a in range(n_accounts):
            account = f"acc{a:06d}"
            rows = []
            for i in range(per_account):
                t = JAN + rng.randrange(MONTH_MS - 1000)
                r = rng.random()
                if i == 0:
                    kind, rtype, service, code, units, cost = "topup" if a % 2 else "payment", "PAYMENT", "", \
                        "400000009", 0, -rng.randrange(10, 50) * 1_000_000  # fmt: skip
                elif i == 1:
                    kind, rtype, service, code, units, cost = "adjustment", "MAIN", "", "400000011", 0, -250_000
                elif r < 0.9:
                    units = rng.randrange(1, 1200)
                    kind, rtype, service, code, cost = "session", "MAIN", "voice", \
                        f"40000000{1 + rng.randrange(3)}", 200_000 + units * 1_667  # fmt: skip
                else:
                    refund = r >= 0.98
                    kind, rtype, service, code, units = ("event_refund" if refund else "event_charge"), "MAIN", \
                        "message", "400000004", 1  # fmt: skip
                    cost = -105_000 if refund else 105_000
                n += 1
                rows.append((f"s{a % 256:03d}:{t}-{n}", "2026-01", account, kind, rtype, f"sess-{n}", 100, account,
                             account, "+4420", service, "retail", t, t + units * 1000, units, 0, cost, "EUR", "g",
                             code, "h", "r", "TERMINATE", "", None, None, None, "BILLABLE", "", None, 0, None,
                             t, None, None, None))  # fmt: skip
            cursor.executemany(sql, rows)
        cursor.execute("COMMIT")
        cursor.execute("ANALYZE")
    finally:
        raw.close()
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--per-account", type=int, default=100)
    parser.add_argument("--pdfs", type=int, default=50, help="invoices rendered to PDF for the per-invoice figure")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="keep the store here instead of a temporary directory")
    args = parser.parse_args()

    directory = args.dir or Path(tempfile.mkdtemp(prefix="occ-bench-billing-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "occ.sqlite3"
    if path.exists():
        path.unlink()
    engine = open_store(f"sqlite:///{path}")
    upgrade(engine)

    t0 = time.perf_counter()
    n = populate(engine, args.accounts, args.per_account, args.seed)
    load_s = time.perf_counter() - t0
    print(f"loaded {n:,} xDRs of {args.accounts:,} accounts in {load_s:.1f} s", flush=True)

    t0 = time.perf_counter()
    with engine.connect() as connection:
        rows = connection.execute(select(*ITEM_COLUMNS).where(xdrs.c.period == "2026-01")).all()
    baseline_s = time.perf_counter() - t0
    assert len(rows) == n
    del rows
    print(f"baseline: SELECT of the period's {n:,} xDRs in {baseline_s:.2f} s", flush=True)

    def progress(done: int, total: int) -> None:
        if done % 2000 == 0 or done == total:
            print(f"  {done:,}/{total:,} accounts, {time.perf_counter() - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    report = run(engine, date(2026, 2, 1), progress=progress)
    run_s = time.perf_counter() - t0
    assert report.issued == args.accounts and report.drafts == 0, report
    t0 = time.perf_counter()
    again = run(engine, date(2026, 2, 1))
    rerun_s = time.perf_counter() - t0
    assert again.issued == 0
    with engine.connect() as connection:
        left = connection.execute(select(func.count()).where(xdrs.c.status == "BILLABLE")).scalar()
        ids = connection.execute(select(invoices.c.id).order_by(invoices.c.id).limit(args.pdfs)).scalars().all()
        views = [document.load(connection, i) for i in ids]
    assert left == 0

    t0 = time.perf_counter()
    sizes = [len(render(view)) for view in views if view is not None]
    pdf_s = (time.perf_counter() - t0) / max(1, len(sizes))

    results = {
        "xdrs": n, "accounts": args.accounts, "load_s": round(load_s, 2), "baseline_select_s": round(baseline_s, 3),
        "run_s": round(run_s, 2), "run_per_invoice_ms": round(run_s / args.accounts * 1000, 3),
        "run_vs_baseline": round(run_s / baseline_s, 1), "xdrs_per_s": round(n / run_s),
        "second_run_s": round(rerun_s, 2), "pdf_per_invoice_ms": round(pdf_s * 1000, 2),
        "pdf_bytes_avg": round(sum(sizes) / max(1, len(sizes))), "target_run_s": 30,
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }  # fmt: skip
    print(f"bill run: {n:,} xDRs, {args.accounts:,} invoices in {run_s:.1f} s "
          f"({results['xdrs_per_s']:,} xDRs/s, {results['run_per_invoice_ms']} ms per invoice; target 30 s); "
          f"{results['run_vs_baseline']}× the bare SELECT ({baseline_s:.2f} s)")  # fmt: skip
    print(f"second run of the same date: {rerun_s:.1f} s, issued nothing")
    print(f"PDF: {results['pdf_per_invoice_ms']} ms per invoice ({results['pdf_bytes_avg']:,} bytes), "
          f"{len(sizes)} rendered")  # fmt: skip
    out = Path(__file__).resolve().parent / "results" / "billing.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``occ erp-sim`` as a real process and ``occ export --once`` against it, on a SQLite store."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner
from conftest import broken, document, queue, rows
from journal_helpers import add_movements, movement

from occ.cli import main
from settlement.store.database import open_store
from settlement.store.migrate import upgrade
from settlement.store.schema import accounts

JAN_5 = 1_767_614_400_000  # 2026-01-05T12:00:00Z


def start_sim(*args: str, env_password: str = "") -> tuple[subprocess.Popen[str], str]:
    """``occ erp-sim ARGS`` on a free port (``env_password``: its accepted password, from the environment)."""
    env = {**os.environ, "OCC_ERP_SIM_PASSWORD": env_password} if env_password else None
    process = subprocess.Popen(
        [sys.executable, "-c", "from occ.cli import main; main()", "erp-sim", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    ready, _, _ = select.select([process.stdout], [], [], 20)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    if "listening on" not in line:
        process.kill()
        raise AssertionError(f"erp-sim did not start: {line!r}")
    return process, line.split("listening on ", 1)[1].split()[0]


def test_occ_export_once_against_occ_erp_sim(tmp_path: Path):
    db_url = f"sqlite:///{tmp_path / 'occ.sqlite3'}"
    engine = open_store(db_url)
    upgrade(engine)
    good, bad = document(), broken(document("00000002"), account_code="")
    queue(engine, good, bad)
    process, url = start_sim("--fail-next", "1", "--store", str(tmp_path / "erp.json"))
    try:
        export = ["export", "--once", "--erp-url", url, "--db-url", db_url, "--timeout-s", "2", "--backoff-s", "0"]
        first = CliRunner().invoke(main, export)
        assert first.exit_code == 3, first.output  # the bad one was rejected
        assert f"{bad.idempotency_key} REJECTED" in first.output and "accountCode" in first.output
        assert f"{good.idempotency_key} RETRYING" in first.output and "transient fault" in first.output
        assert "2 sent, 0 accepted, 0 duplicate, 1 rejected, 1 retrying" in first.output
        second = CliRunner().invoke(main, export)
        assert second.exit_code == 0, second.output
        assert "1 sent, 1 accepted" in second.output and "0 still pending, 1 rejected in the outbox" in second.output
        held = httpx.get(url.removesuffix("soap") + "documents").json()
        assert list(held) == [good.idempotency_key]
        assert rows(engine)[good.idempotency_key].erp_document_number == held[good.idempotency_key][
            "erp_document_number"]  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
        engine.dispose()
    assert process.returncode == 0 and "stopped; 1 documents held" in out
    assert list(json.loads((tmp_path / "erp.json").read_text())) == [good.idempotency_key]


def test_occ_export_keeps_sending_until_sigterm(tmp_path: Path):
    db_url = f"sqlite:///{tmp_path / 'occ.sqlite3'}"
    engine = open_store(db_url)
    upgrade(engine)
    sim, url = start_sim()
    exporter = subprocess.Popen(
        [sys.executable, "-c", "from occ.cli import main; main()", "export", "--erp-url", url, "--db-url", db_url,
         "--timeout-s", "2", "--poll-s", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        queue(engine, document(), document("00000002"))  # arrives while it runs
        deadline = time.monotonic() + 20
        while len(httpx.get(url.removesuffix("soap") + "documents").json()) < 2:
            assert time.monotonic() < deadline and exporter.poll() is None, "the exporter did not send both"
            time.sleep(0.05)
        exporter.send_signal(signal.SIGTERM)
        out, _ = exporter.communicate(timeout=10)
    finally:
        for process in (exporter, sim):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=10)
        engine.dispose()
    assert exporter.returncode == 0, out
    assert "2 sent, 2 accepted, 0 duplicate, 0 rejected, 0 retrying; 0 still pending" in out
    assert {row.state for row in rows(engine).values()} == {"ACCEPTED"}


def test_occ_export_queues_and_sends_journals_from_the_erp_settings_and_occ_erp_gl_agrees(tmp_path: Path):
    db_url = f"sqlite:///{tmp_path / 'occ.sqlite3'}"
    engine = open_store(db_url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(accounts.insert(), {"account": "carol", "currency": "EUR", "opening_balance": 0,
                                               "first_seen_ms": JAN_5})  # fmt: skip
    add_movements(engine, movement("carol", "topup", 25_000_000, "100100", JAN_5, key="s003:1-0"),
                  movement("carol", "adjustment", -1_234_567, "480000", JAN_5, key="s003:2-0"),
                  movement("carol", "payment", 3_000_000, "", JAN_5, key="s003:3-0"))  # fmt: skip
    process, url = start_sim()
    config = tmp_path / "occ.toml"
    config.write_text(f'[erp]\nurl = "{url}"\njournals = true\nseries = {{ INCOMING_PAYMENT = "OCC-PY" }}\n'
                      'cost_centres = { "480000" = "CC-CARE" }\n')  # fmt: skip
    try:
        sent = CliRunner().invoke(main, ["export", "--once", "--config", str(config), "--db-url", db_url])
        assert sent.exit_code == 0, sent.output
        assert "queued 2 journal documents for 2 ledger rows" in sent.output
        assert "not posted: s003:3-0: no ledger code (the G/L account to post to)" in sent.output
        assert "2 sent, 2 accepted" in sent.output
        held = httpx.get(url.removesuffix("soap") + "documents").json()
        assert sorted(held) == ["default:JE:s003:2-0:0", "default:PY:s003:1-0:0"]
        assert held["default:PY:s003:1-0:0"]["fields"] == {"series": "OCC-PY", "memo": "OCC top-up s003:1-0"}
        assert held["default:JE:s003:2-0:0"]["fields"] == {"memo": "OCC adjustment s003:2-0",
                                                           "lines": [{}, {"costCentre": "CC-CARE"}]}
        gl = CliRunner().invoke(main, ["erp-gl", "--config", str(config), "--db-url", db_url, "--from", "2026-01-01",
                                       "--to", "2026-01-31"])  # fmt: skip
        assert gl.exit_code == 0, gl.output
        assert gl.output.splitlines()[1:] == [
            "100100          EUR               25.00           0.00          25.00           0.00",
            "200000          EUR                1.23          25.00           1.23          25.00",
            "480000          EUR                0.00           1.23           0.00           1.23",
            "OCC and the ERP agree",
        ]
        add_movements(engine, movement("carol", "refund", -2_000_000, "100100", JAN_5 + 1, key="s003:4-0"))
        unsent = CliRunner().invoke(main, ["erp-gl", "--config", str(config), "--db-url", db_url, "--from",
                                           "2026-01-05", "--to", "2026-01-05"])  # fmt: skip
        assert unsent.exit_code == 1, unsent.output
        assert "100100          EUR               25.00           2.00          25.00           0.00  DIFFERS" in \
            unsent.output and unsent.output.endswith("OCC and the ERP DIFFER\n")  # fmt: skip
        no_gl = CliRunner().invoke(main, ["erp-gl", "--config", str(config), "--db-url", db_url, "--from",
                                          "2026-01-06", "--to", "2026-01-05"])  # fmt: skip
        assert no_gl.exit_code == 2 and "--to 2026-01-05 is before --from 2026-01-06" in no_gl.output
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
        engine.dispose()


def test_occ_export_without_a_url_says_where_to_give_one(tmp_path: Path):
    result = CliRunner(env={"OCC_ERP_URL": None, "OCC_ERP__URL": None}).invoke(
        main, ["export", "--once", "--db-url", f"sqlite:///{tmp_path / 'x.sqlite3'}"])
    assert result.exit_code == 2
    assert "the ERP's URL is missing: give --erp-url (or $OCC_ERP_URL), or erp.url in the settings" in result.output

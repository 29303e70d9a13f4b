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

from occ.cli import main
from settlement.store.database import open_store
from settlement.store.migrate import upgrade


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

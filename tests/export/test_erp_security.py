"""Authenticating to the ERP middleware: HTTP basic, a WS-Security UsernameToken (text and digest) and client
certificates over https, each demanded by a real ``occ erp-sim`` on loopback and refused without it.

Certificates come from trustme, made here (``tests/certs.py``).
"""

from __future__ import annotations

import asyncio
import signal
import ssl

import httpx
import pytest
from certs import make_certs
from click.testing import CliRunner
from conftest import FAST, document, queue, rows
from test_export_cli import start_sim

from occ.cli import main
from settlement.export.erp_sim import ErpSim
from settlement.export.exporter import Exporter
from settlement.export.security import ErpAuth, SimSecurity
from settlement.export.soap_client import ErpAuthError, ErpClient, ErpTransientError
from settlement.store.database import open_store
from settlement.store.migrate import upgrade

CREDENTIALS = {"username": "occ-export", "password": "s3cret-Passw0rd"}


@pytest.fixture
def certs(tmp_path):
    return make_certs(tmp_path / "certs")


async def running(security: SimSecurity) -> ErpSim:
    sim = ErpSim(security=security)
    await sim.start()
    return sim


async def ping(url: str, auth: ErpAuth) -> str:
    async with ErpClient(url, timeout_s=5.0, auth=auth) as client:
        return await client.ping()


async def test_http_basic_is_required_and_checked():
    sim = await running(SimSecurity(require_basic=True, **CREDENTIALS))
    try:
        assert await ping(sim.url, ErpAuth(**CREDENTIALS)) == "occ-erp-sim"
        for auth in (ErpAuth(), ErpAuth(username="occ-export", password="wrong")):
            with pytest.raises(ErpAuthError, match=r"refused our credentials \(HTTP 401\)") as refused:
                await ping(sim.url, auth)
            assert refused.value.retriable and not refused.value.outcome_unknown  # nothing was taken
        assert sim.faults["unauthorized"] == 2 and sim.requests["Ping"] == 1
    finally:
        await sim.close()


@pytest.mark.parametrize("kind", ["text", "digest"])
async def test_a_ws_security_username_token_is_required_and_checked(kind):
    sim = await running(SimSecurity(require_wsse=True, **CREDENTIALS))
    try:
        assert await ping(sim.url, ErpAuth(wsse=kind, **CREDENTIALS)) == "occ-erp-sim"
        refused = (ErpAuth(), ErpAuth(**CREDENTIALS), ErpAuth(wsse=kind, username="occ-export", password="wrong"))
        for auth in refused:  # none; the right ones in HTTP basic, not the header; a wrong password
            with pytest.raises(ErpAuthError, match="WS-Security credentials"):
                await ping(sim.url, auth)
        assert sim.faults["AUTHENTICATION"] == 3
    finally:
        await sim.close()


async def test_https_with_a_required_client_certificate(certs):
    sim = await running(SimSecurity(cert_file=str(certs.server_cert), key_file=str(certs.server_key),
                                    client_ca_file=str(certs.ca)))  # fmt: skip
    try:
        assert sim.url.startswith("https://127.0.0.1:")
        mine = {"cert_file": str(certs.client_cert), "key_file": str(certs.client_key)}
        assert await ping(sim.url, ErpAuth(ca_file=str(certs.ca), **mine)) == "occ-erp-sim"
        for auth in (ErpAuth(ca_file=str(certs.other_ca), **mine), ErpAuth(**mine)):  # a server OCC does not trust
            with pytest.raises(ErpAuthError, match=r"TLS with https://127.*CERTIFICATE_VERIFY_FAILED"):
                await ping(sim.url, auth)
        # No client certificate: under TLS 1.3 the server closes the connection after the handshake, which the
        # client cannot tell from a reset mid-request: retried, and its outcome checked first.
        with pytest.raises(ErpTransientError, match="--erp-cert") as reset:
            await ping(sim.url, ErpAuth(ca_file=str(certs.ca)))
        assert reset.value.outcome_unknown
        assert sim.requests["Ping"] == 1
    finally:
        await sim.close()


def test_settings_that_cannot_work_are_refused_naming_the_flag():
    with pytest.raises(ValueError, match="--erp-username"):
        ErpAuth(password="x")
    with pytest.raises(ValueError, match="--erp-key"):
        ErpAuth(cert_file="/c.pem")
    with pytest.raises(ValueError, match="https"):
        ErpClient("http://127.0.0.1:1/soap", auth=ErpAuth(ca_file="/ca.pem"))
    with pytest.raises(ValueError, match="--username and --password"):
        SimSecurity(require_basic=True)


async def test_the_exporter_sends_with_everything_at_once_and_keeps_documents_it_could_not_send(certs, store):
    security = SimSecurity(require_basic=True, cert_file=str(certs.server_cert), key_file=str(certs.server_key),
                           client_ca_file=str(certs.ca), **CREDENTIALS)  # fmt: skip
    sim = await running(security)
    tls = {"ca_file": str(certs.ca), "cert_file": str(certs.client_cert), "key_file": str(certs.client_key)}
    try:
        queue(store, document("00000001"), document("00000002"))
        async with Exporter(store, sim.url, options=FAST, auth=ErpAuth(**tls)) as exporter:  # no credentials
            summary = await exporter.run_once()
        assert summary.retrying == 2 and not sim.documents
        assert all("refused our credentials" in row.last_error for row in rows(store).values())
        async with Exporter(store, sim.url, options=FAST, auth=ErpAuth(**tls, **CREDENTIALS)) as exporter:
            await asyncio.sleep(0.3)  # past the backoff of the first attempt
            summary = await exporter.run_once()
        assert summary.accepted == 2 and len(sim.documents) == 2
        assert {row.state for row in rows(store).values()} == {"ACCEPTED"}
    finally:
        await sim.close()


def test_occ_export_and_occ_erp_sim_with_basic_and_client_certificates(tmp_path, certs):
    db_url = f"sqlite:///{tmp_path / 'occ.sqlite3'}"
    engine = open_store(db_url)
    upgrade(engine)
    queue(engine, document())
    process, url = start_sim("--require-basic", "--username", "occ-export", "--tls-cert", str(certs.server_cert),
                             "--tls-key", str(certs.server_key), "--client-ca", str(certs.ca),
                             env_password=CREDENTIALS["password"])  # fmt: skip
    try:
        assert url.startswith("https://")
        export = ["export", "--once", "--erp-url", url, "--db-url", db_url, "--timeout-s", "5", "--backoff-s", "0",
                  "--erp-ca", str(certs.ca), "--erp-cert", str(certs.client_cert), "--erp-key", str(certs.client_key),
                  "--erp-username", "occ-export"]  # fmt: skip
        refused = CliRunner().invoke(main, export, env={"OCC_ERP_PASSWORD": "wrong"})
        assert refused.exit_code == 0 and "RETRYING" in refused.output and "HTTP 401" in refused.output
        sent = CliRunner().invoke(main, export, env={"OCC_ERP_PASSWORD": CREDENTIALS["password"]})
        assert sent.exit_code == 0 and "1 sent, 1 accepted" in sent.output, sent.output
        with pytest.raises(httpx.TransportError):  # the simulator's other routes need the client certificate too
            httpx.get(url.removesuffix("soap") + "documents", verify=ssl.create_default_context(cafile=str(certs.ca)))
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
        engine.dispose()
    assert "stopped; 1 documents held" in out

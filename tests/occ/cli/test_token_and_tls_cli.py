"""``occ token`` and the connection flags of the ``occ`` commands: a token from a flag, the environment, a file, the
client config or the data dir; TLS and mutual TLS from --ca / --client-cert / --client-key, against a real server."""

from __future__ import annotations

import asyncio

import pytest
from certificates import Pki
from click.testing import CliRunner, Result
from online_app import EXAMPLE_TARIFF

from occ.api.server import GrpcServer
from occ.api.tokens import LOCAL_TOKEN_FILE, TOKENS_FILE, TokenFile, TokenTable, bootstrap_local_token
from occ.app import App
from occ.cli import main
from occ.settings import Settings
from occ.store.process import free_port


async def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    result = await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env or {})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_token_create_prints_it_once_list_shows_no_secret_and_revoke_ends_it(tmp_path):
    runner = CliRunner()
    created = runner.invoke(main, ["token", "create", "ops", "--role", "operator", "--data-dir", str(tmp_path)])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("occ_") and "not shown again" in created.stderr
    assert TokenTable(tmp_path / TOKENS_FILE).find(token).role == "operator"
    listed = runner.invoke(main, ["token", "list", "--data-dir", str(tmp_path)])
    assert listed.stdout.split()[:2] == ["ops", "operator"] and token not in listed.stdout
    again = runner.invoke(main, ["token", "create", "ops", "--role", "viewer", "--data-dir", str(tmp_path)])
    assert again.exit_code == 2 and "exists already" in again.stderr
    assert runner.invoke(main, ["token", "revoke", "ops", "--data-dir", str(tmp_path)]).exit_code == 0
    assert TokenTable(tmp_path / TOKENS_FILE).find(token) is None
    missing = runner.invoke(main, ["token", "revoke", "ops", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "no token named 'ops'" in missing.stderr


@pytest.fixture
async def tls_server(redis_url, tmp_path):
    """The real App over TLS: Charging requires client certificates, Admin takes tokens over server-only TLS."""
    pki = Pki(tmp_path / "pki")
    cert, key = pki.server()
    settings = Settings.load(None, {}, port=free_port(), admin_listen=f"127.0.0.1:{free_port()}", redis_url=redis_url,
                             data_dir=tmp_path / "data", tariff_dir=EXAMPLE_TARIFF, grace_s=0.0,
                             tls_cert_file=str(cert), tls_key_file=str(key), tls_client_ca_file=str(pki.ca_file),
                             tls_client_auth="required", admin_tls_client_auth="none")  # fmt: skip
    server = GrpcServer(settings, app_factory=App)
    await server.start()
    yield settings, pki
    await server.stop()


async def test_commands_speak_tls_and_mutual_tls_with_a_token_from_flag_env_or_config(tls_server, tmp_path):
    settings, pki = tls_server
    token = TokenFile(settings.data_dir / TOKENS_FILE).create("ops", "admin")
    admin = ["--admin-server", settings.admin_listen, "--ca", str(pki.ca_file)]
    created = await invoke("account", "create", "tls-1", "--plan", "retail", *admin, "--token", token)
    assert created.exit_code == 0, created.output
    topped = await invoke("account", "topup", "tls-1", "10", "--ledger", "400000009", *admin,
                          env={"OCC_TOKEN": token})  # fmt: skip
    assert topped.exit_code == 0, topped.output

    config = tmp_path / "client.toml"
    config.write_text(f'admin_server = "{settings.admin_listen}"\nca = "{pki.ca_file}"\ntoken = "{token}"\n')
    shown = await invoke("account", "show", "tls-1", "--client-config", str(config))
    assert shown.exit_code == 0 and "10.000000" in shown.stdout, shown.output

    plaintext = await invoke("account", "show", "tls-1", "--admin-server", settings.admin_listen, "--token", token)
    assert plaintext.exit_code == 1 and plaintext.stderr.startswith("error: UNAVAILABLE")
    anonymous = await invoke("account", "show", "tls-1", *admin, "--data-dir", str(tmp_path / "nowhere"))
    assert anonymous.exit_code == 1 and "error: UNAUTHENTICATED" in anonymous.stderr and "hint:" in anonymous.stderr

    cert, key = pki.client("switch-1")
    charging = ["--server", f"127.0.0.1:{settings.port}", "--ca", str(pki.ca_file)]
    called = await invoke("call", "tls-1", "+442079460000", "--seconds", "30", "--at", "2026-01-05T09:00:00Z",
                          *charging, "--client-cert", str(cert), "--client-key", str(key))  # fmt: skip
    assert called.exit_code == 0, called.output
    refused = await invoke("call", "tls-1", "+442079460000", "--seconds", "30", *charging)  # no client certificate
    assert refused.exit_code == 1 and refused.stderr.startswith("error: UNAVAILABLE")


async def test_on_the_servers_machine_the_data_dirs_token_is_used_by_default(redis_url, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    settings = Settings.load(None, {}, port=free_port(), admin_listen=f"127.0.0.1:{free_port()}", redis_url=redis_url,
                             data_dir=data, tariff_dir=EXAMPLE_TARIFF, grace_s=0.0)  # fmt: skip
    bootstrap_local_token(data, TokenFile(data / TOKENS_FILE))  # what occ serve does on first start
    server = GrpcServer(settings, app_factory=App)
    await server.start()
    try:
        env = {"OCC_ADMIN_SERVER": settings.admin_listen, "OCC_DATA_DIR": str(data)}
        result = await invoke("account", "create", "local-1", "--plan", "retail", env=env)
        assert result.exit_code == 0, result.output
        assert (data / LOCAL_TOKEN_FILE).exists()
        lines = (data / "audit.jsonl").read_text().splitlines()
        assert '"actor":"token:local-admin"' in lines[-1]
    finally:
        await server.stop()


def test_serve_refuses_plaintext_on_an_address_beyond_loopback_before_binding_anything():
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"], env={"OCC_ADMIN_LISTEN": ""})
    assert result.exit_code == 2
    assert "host 0.0.0.0 is not a loopback address: serving it without TLS is refused" in result.output
    result = CliRunner().invoke(main, ["serve", "--admin-listen", "192.0.2.1:50052"])
    assert result.exit_code == 2 and "admin_listen 192.0.2.1 is not a loopback address" in result.output

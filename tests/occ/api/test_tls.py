"""TLS on the gRPC listeners, with real handshakes (trustme certificates made here): server-only TLS, mutual TLS
required, certificates replaced while the server runs, reflection as a setting, plaintext refused off loopback."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc
import pytest
from certificates import Pki
from fake_app import EmptyApp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from occ.api.client import ClientTls, aio_channel
from occ.api.server import GrpcServer, reflection_on
from occ.api.tls import CertificateError, check_files
from occ.settings import Settings, SettingsError
from occ.store.process import free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


def tls_settings(tmp_path: Path, pki: Pki, **overrides) -> Settings:
    cert, key = pki.server()
    options = {"port": free_port(), "grace_s": 0.0, "data_dir": tmp_path, "admin_listen": "",
               "tls_cert_file": str(cert), "tls_key_file": str(key), **overrides}  # fmt: skip
    return Settings.load(None, {}, **options)


async def health(port: int, tls: ClientTls) -> int | grpc.StatusCode:
    """The health status over a fresh connection, or the status code of the failed call."""
    async with aio_channel(f"127.0.0.1:{port}", tls) as channel:
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return answer.status


async def reflected(port: int) -> set[str]:
    async with aio_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="*")]))
        try:
            async for answer in call:
                return {service.name for service in answer.list_services_response.service}
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
            return set()
    return set()


@pytest.fixture
async def serve():
    started: list[GrpcServer] = []

    async def start(settings: Settings) -> GrpcServer:
        server = GrpcServer(settings, app_factory=EmptyApp)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def test_server_only_tls_serves_a_client_that_trusts_the_ca_and_no_plaintext_client(serve, tmp_path):
    pki = Pki(tmp_path / "pki")
    settings = tls_settings(tmp_path, pki)
    await serve(settings)
    assert await health(settings.port, ClientTls(ca=pki.ca_file)) == SERVING
    assert await health(settings.port, ClientTls()) == grpc.StatusCode.UNAVAILABLE  # plaintext: no handshake
    stranger = Pki(tmp_path / "other")
    assert await health(settings.port, ClientTls(ca=stranger.ca_file)) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_required_refuses_a_client_without_a_certificate(serve, tmp_path):
    pki = Pki(tmp_path / "pki")
    settings = tls_settings(tmp_path, pki, tls_client_ca_file=str(pki.ca_file), tls_client_auth="required")
    await serve(settings)
    cert, key = pki.client("switch-1")
    assert await health(settings.port, ClientTls(ca=pki.ca_file, cert=cert, key=key)) == SERVING
    assert await health(settings.port, ClientTls(ca=pki.ca_file)) == grpc.StatusCode.UNAVAILABLE
    stranger = Pki(tmp_path / "other")
    cert, key = stranger.client("intruder")  # a certificate, but not from the CA the server trusts
    assert await health(settings.port, ClientTls(ca=pki.ca_file, cert=cert, key=key)) == grpc.StatusCode.UNAVAILABLE


def _replace(target: Path, source: Path) -> None:
    """As certificate managers do: a new file renamed over the old one."""
    temporary = target.with_name(target.name + ".new")
    temporary.write_bytes(source.read_bytes())
    os.replace(temporary, target)


async def test_replaced_certificate_files_serve_the_next_handshake_without_a_restart(serve, tmp_path, caplog):
    first = Pki(tmp_path / "first")
    settings = tls_settings(tmp_path, first)
    await serve(settings)
    assert await health(settings.port, ClientTls(ca=first.ca_file)) == SERVING

    async with aio_channel(f"127.0.0.1:{settings.port}", ClientTls(ca=first.ca_file)) as kept:
        stub = health_pb2_grpc.HealthStub(kept)
        assert (await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == SERVING

        second = Pki(tmp_path / "second")  # another CA: a client can tell which certificate it was shown
        cert, key = second.server(tmp_path / "second" / "s.pem", tmp_path / "second" / "s.key")
        _replace(Path(settings.tls_key_file), key)
        _replace(Path(settings.tls_cert_file), cert)
        assert await health(settings.port, ClientTls(ca=second.ca_file)) == SERVING
        assert await health(settings.port, ClientTls(ca=first.ca_file)) == grpc.StatusCode.UNAVAILABLE
        # a connection made before keeps working
        assert (await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == SERVING

    # a broken change (a key that belongs to another certificate) is not taken: the last good one stays
    third = Pki(tmp_path / "third")
    _, wrong_key = third.server(tmp_path / "third" / "s.pem", tmp_path / "third" / "s.key")
    _replace(Path(settings.tls_key_file), wrong_key)
    with caplog.at_level(logging.WARNING, logger="occ.api.tls"):
        assert await health(settings.port, ClientTls(ca=second.ca_file)) == SERVING
        assert await health(settings.port, ClientTls(ca=second.ca_file)) == SERVING
    warnings = [r for r in caplog.records if r.getMessage().startswith("TLS files changed but do not load")]
    assert len(warnings) == 1  # once per change, not per handshake


def test_certificate_files_that_do_not_load_stop_the_start_naming_the_setting(tmp_path):
    pki = Pki(tmp_path / "pki")
    settings = tls_settings(tmp_path, pki)
    check_files(settings)  # they load
    other = Pki(tmp_path / "other")
    _, wrong_key = other.server(tmp_path / "other" / "s.pem", tmp_path / "other" / "s.key")
    _replace(Path(settings.tls_key_file), wrong_key)
    with pytest.raises(CertificateError, match=r"tls_cert_file .* with tls_key_file"):
        check_files(settings)
    missing = Settings.load(None, {}, tls_cert_file=str(tmp_path / "none.pem"), tls_key_file=str(wrong_key))
    with pytest.raises(CertificateError, match=r"tls_cert_file .*none\.pem"):
        check_files(missing)


async def test_reflection_is_a_setting_on_by_default_only_on_loopback(serve, tmp_path):
    on = Settings.load(None, {}, port=free_port(), grace_s=0.0, data_dir=tmp_path, admin_listen="")
    await serve(on)
    assert REFLECTION in await reflected(on.port)
    off = Settings.load(None, {}, port=free_port(), grace_s=0.0, data_dir=tmp_path, admin_listen="", reflection="off")
    await serve(off)
    assert await reflected(off.port) == set()
    assert await health(off.port, ClientTls()) == SERVING  # health stays

    # what `auto` decides for the addresses a test may not bind (tests listen on loopback only)
    assert [reflection_on(on, host) for host in ("127.0.0.1", "::1", "localhost")] == [True, True, True]
    assert [reflection_on(on, host) for host in ("0.0.0.0", "10.1.2.3", "::", "ocs.example.com")] == [False] * 4
    forced = Settings.load(None, {}, reflection="on", tls_cert_file="c", tls_key_file="k")
    assert reflection_on(forced, "0.0.0.0")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"host": "0.0.0.0"}, "host"),
        ({"host": "10.1.2.3", "admin_listen": "127.0.0.1:50052"}, "host"),
        ({"admin_listen": "[::]:50052"}, "admin_listen"),
        ({"admin_listen": "50052"}, "admin_listen"),
        ({"tls_cert_file": "c.pem"}, "tls_key_file"),
        ({"tls_client_auth": "optional", "tls_cert_file": "c", "tls_key_file": "k"}, "tls_client_auth"),
        ({"tls_client_auth": "required", "tls_cert_file": "c", "tls_key_file": "k"}, "tls_client_auth"),
        ({"admin_tls_client_auth": "sometimes"}, "admin_tls_client_auth"),
        ({"reflection": "maybe"}, "reflection"),
        ({"admin_client_roles": "ops=root"}, "admin_client_roles"),
    ],
)
def test_exposure_and_tls_settings_are_checked(overrides, field):
    with pytest.raises(SettingsError) as caught:
        Settings.load(None, {}, **overrides)
    assert [name for name, _ in caught.value.problems] == [field]


def test_plaintext_off_loopback_only_on_purpose_or_with_tls():
    assert Settings.load(None, {}, host="0.0.0.0", allow_plaintext=True).host == "0.0.0.0"
    assert Settings.load(None, {}, host="0.0.0.0", tls_cert_file="c", tls_key_file="k").tls
    env = {"OCC_HOST": "::", "OCC_ALLOW_PLAINTEXT": "true", "OCC_ADMIN_CLIENT_ROLES": "ops.example.com=operator"}
    assert Settings.load(None, env).allow_plaintext
    assert Settings.load(None, {}).admin_listen == "127.0.0.1:50052"  # the default stays on loopback

"""The Admin API on its own listener, every call authenticated (bearer tokens, client certificates), authorised per
method by role, and audited. A real ``occ.app.App`` on a real redis-server, served by ``GrpcServer`` on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from certificates import Pki
from online_app import EXAMPLE_TARIFF

from occ.api.client import PLAINTEXT, ClientTls, aio_channel
from occ.api.roles import METHOD_ROLES, ROLES, allowed
from occ.api.server import GrpcServer
from occ.api.tariff_source import local_files
from occ.api.tokens import TOKENS_FILE, TokenFile
from occ.app import App
from occ.settings import Settings
from occ.store.process import free_port
from occ.v1 import admin_pb2 as admin
from occ.v1 import admin_pb2_grpc

ADMIN_METHODS = [method.name for method in admin.DESCRIPTOR.services_by_name["Admin"].methods]


class Served:
    """A running GrpcServer with the real App; ``admin(token=…, tls=…)`` gives Admin stubs on the Admin port."""

    def __init__(self, server: GrpcServer, tmp_path: Path) -> None:
        self.server, self.settings, self.tmp_path = server, server.settings, tmp_path
        self.tokens = TokenFile(tmp_path / TOKENS_FILE)
        self._channels: list[grpc.aio.Channel] = []

    @property
    def admin_address(self) -> str:
        return self.settings.admin_listen

    def admin(self, token: str = "", tls: ClientTls = PLAINTEXT, address: str = "") -> admin_pb2_grpc.AdminStub:
        channel = aio_channel(address or self.admin_address, tls, token=token)
        self._channels.append(channel)
        return admin_pb2_grpc.AdminStub(channel)

    def audit(self) -> list[dict]:
        path = self.tmp_path / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
        await self.server.stop()


@pytest.fixture
async def serve(redis_url, tmp_path) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    started: list[Served] = []

    async def start(**overrides) -> Served:
        options = {"port": free_port(), "admin_listen": f"127.0.0.1:{free_port()}", "redis_url": redis_url,
                   "data_dir": tmp_path, "tariff_dir": EXAMPLE_TARIFF, "sweep_interval_s": 3600.0, "grace_s": 0.0,
                   **overrides}  # fmt: skip
        server = GrpcServer(Settings.load(None, {}, **options), app_factory=App)
        await server.start()
        started.append(Served(server, tmp_path))
        return started[-1]

    yield start
    for served in started:
        await served.close()


async def code_of(call: Awaitable) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_every_admin_method_has_a_row_in_the_roles_table():
    assert sorted(METHOD_ROLES) == sorted(ADMIN_METHODS)
    assert all(allowed(method, "admin") for method in ADMIN_METHODS)
    assert not allowed("NoSuchMethod", "admin")  # a method missing from the table is refused to everyone
    assert not any(allowed(method, "viewer") for method in ("Transact", "CreateAccount", "LoadTariff"))


async def test_admin_has_its_own_listener_and_every_call_needs_a_known_token(serve):
    served = await serve()
    token = served.tokens.create("ops", "operator")
    request = admin.GetAccountRequest(id="nobody")
    assert await code_of(served.admin(token).GetAccount(request)) == grpc.StatusCode.NOT_FOUND  # through, then answered
    assert await code_of(served.admin().GetAccount(request)) == grpc.StatusCode.UNAUTHENTICATED
    assert await code_of(served.admin("occ_not-a-token").GetAccount(request)) == grpc.StatusCode.UNAUTHENTICATED
    raw = served.admin().GetAccount(request, metadata=[("authorization", token)])  # not "Bearer <token>"
    assert await code_of(raw) == grpc.StatusCode.UNAUTHENTICATED
    charging_port = served.admin(token, address=f"127.0.0.1:{served.settings.port}")
    assert await code_of(charging_port.GetAccount(request)) == grpc.StatusCode.UNIMPLEMENTED


async def test_each_role_calls_what_the_table_allows_and_nothing_else(serve):
    served = await serve()
    tokens = {role: served.tokens.create(f"{role}-1", role) for role in ROLES}
    shared = admin.Account(id="shared", currency="EUR", tariff_plan="retail")
    await served.admin(tokens["admin"]).CreateAccount(shared)
    upload = admin.LoadTariffRequest(files=local_files(Path(EXAMPLE_TARIFF)))
    for number, role in enumerate(ROLES):
        stub = served.admin(tokens[role])
        new = admin.Account(id=f"acct-{role}", currency="EUR", tariff_plan="retail")
        topup = admin.TransactionRequest(account_id="shared", type=admin.TOP_UP, amount_micros=1_000_000,
                                         idempotency_key=f"k-{number}", ledger_code=400000009)  # fmt: skip
        calls = {
            "CreateAccount": lambda stub=stub, new=new: stub.CreateAccount(new),
            "GetAccount": lambda stub=stub: stub.GetAccount(admin.GetAccountRequest(id="shared")),
            "Transact": lambda stub=stub, topup=topup: stub.Transact(topup),
            "LoadTariff": lambda stub=stub: stub.LoadTariff(upload),
        }
        for method, call in calls.items():
            code = await code_of(call())
            expected = grpc.StatusCode.OK if allowed(method, role) else grpc.StatusCode.PERMISSION_DENIED
            assert code == expected, (role, method, code)
    balance = await served.admin(tokens["viewer"]).GetAccount(admin.GetAccountRequest(id="shared"))
    assert balance.balance_micros == 2_000_000  # the finance and admin top-ups went through; the others did not


async def test_a_revoked_token_fails_from_the_next_call_without_a_restart(serve):
    served = await serve()
    stub = served.admin(served.tokens.create("temp", "viewer"))
    request = admin.GetAccountRequest(id="x")
    assert await code_of(stub.GetAccount(request)) == grpc.StatusCode.NOT_FOUND
    assert served.tokens.revoke("temp")
    assert await code_of(stub.GetAccount(request)) == grpc.StatusCode.UNAUTHENTICATED
    stored = (served.tmp_path / TOKENS_FILE).read_text()
    assert "occ_" not in stored  # tokens are kept as hashes only


async def test_every_call_is_one_audit_line_with_who_what_and_the_outcome(serve):
    served = await serve()
    finance = served.admin(served.tokens.create("alice", "finance"))
    viewer = served.admin(served.tokens.create("bob", "viewer"))
    operator = served.admin(served.tokens.create("carol", "operator"))
    await operator.CreateAccount(admin.Account(id="acme", currency="EUR", tariff_plan="retail"))
    topup = admin.TransactionRequest(account_id="acme", type=admin.TOP_UP, amount_micros=5_000_000,
                                     idempotency_key="t-1", ledger_code=400000009, description="first")  # fmt: skip
    answer = await finance.Transact(topup)
    assert await code_of(viewer.Transact(topup)) == grpc.StatusCode.PERMISSION_DENIED
    anonymous = served.admin().GetAccount(admin.GetAccountRequest(id="acme"))
    assert await code_of(anonymous) == grpc.StatusCode.UNAUTHENTICATED

    lines = served.audit()
    assert [(line["actor"], line["method"], line["outcome"]) for line in lines] == [
        ("token:carol", "CreateAccount", "OK"),
        ("token:alice", "Transact", "OK"),
        ("token:bob", "Transact", "PERMISSION_DENIED"),
        ("", "GetAccount", "UNAUTHENTICATED"),
    ]
    transact = lines[1]
    assert transact["role"] == "finance" and transact["peer"].startswith("ipv4:127.0.0.1:")
    assert transact["request"] == {"account_id": "acme", "type": "TOP_UP", "amount_micros": 5_000_000,
                                   "idempotency_key": "t-1", "ledger_code": 400000009,
                                   "description": "first"}  # fmt: skip
    assert transact["answer"]["transaction_id"] == answer.transaction_id
    assert "may not call Transact" in lines[2]["detail"]
    assert (served.tmp_path / "audit.jsonl").stat().st_mode & 0o777 == 0o600


async def test_a_client_certificate_is_an_identity_with_the_role_it_is_given(serve, tmp_path):
    pki = Pki(tmp_path / "pki")
    cert, key = pki.server()
    served = await serve(tls_cert_file=str(cert), tls_key_file=str(key), tls_client_ca_file=str(pki.ca_file),
                         admin_tls_client_auth="required", admin_client_roles="billing-bot=finance")  # fmt: skip
    bot = ClientTls(ca=pki.ca_file, cert=pki.client("billing-bot")[0], key=pki.directory / "billing-bot.key")
    stranger_cert, stranger_key = pki.client("someone")
    stranger = ClientTls(ca=pki.ca_file, cert=stranger_cert, key=stranger_key)
    request = admin.GetAccountRequest(id="nobody")
    assert await code_of(served.admin(tls=bot).GetAccount(request)) == grpc.StatusCode.NOT_FOUND
    assert await code_of(served.admin(tls=bot).LoadTariff(admin.LoadTariffRequest(directory="x"))) == (
        grpc.StatusCode.PERMISSION_DENIED)  # fmt: skip
    assert await code_of(served.admin(tls=stranger).GetAccount(request)) == grpc.StatusCode.PERMISSION_DENIED
    token = served.tokens.create("ops", "operator")  # a token over mutual TLS names the caller
    assert await code_of(served.admin(token, tls=stranger).GetAccount(request)) == grpc.StatusCode.NOT_FOUND
    without = ClientTls(ca=pki.ca_file)
    assert await code_of(served.admin(token, tls=without).GetAccount(request)) == grpc.StatusCode.UNAVAILABLE
    actors = [(line["actor"], line["outcome"]) for line in served.audit()]
    assert actors[:2] == [("certificate:billing-bot", "NOT_FOUND"), ("certificate:billing-bot", "PERMISSION_DENIED")]


async def test_admin_on_the_charging_port_only_when_a_setting_says_so_and_authenticated_alike(serve):
    served = await serve(admin_on_charging_port=True, admin_listen="")
    token = served.tokens.create("ops", "operator")
    on_charging = f"127.0.0.1:{served.settings.port}"
    request = admin.GetAccountRequest(id="nobody")
    assert await code_of(served.admin(token, address=on_charging).GetAccount(request)) == grpc.StatusCode.NOT_FOUND
    assert await code_of(served.admin(address=on_charging).GetAccount(request)) == grpc.StatusCode.UNAUTHENTICATED


async def test_admin_served_without_its_interceptor_refuses_every_call(redis_url, tmp_path):
    app = App(Settings.load(None, {}, redis_url=redis_url, data_dir=tmp_path, tariff_dir=EXAMPLE_TARIFF))
    await app.start()
    server = grpc.aio.server()
    app.add_admin(server)  # no AdminAuthInterceptor: a wiring mistake
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with aio_channel(f"127.0.0.1:{port}", token="occ_anything") as channel:
            stub = admin_pb2_grpc.AdminStub(channel)
            account = admin.Account(id="sneaky", currency="EUR", tariff_plan="retail")
            assert await code_of(stub.CreateAccount(account)) == grpc.StatusCode.UNAUTHENTICATED
        assert await app.store.read_account("sneaky") is None
    finally:
        await server.stop(0)
        await app.close()

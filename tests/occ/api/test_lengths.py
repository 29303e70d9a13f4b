"""Every string a client sends has a length limit, documented beside the field in the proto and checked in one place
(``occ.api.wire.check_lengths``); an error quotes at most a short prefix of what was sent, so it always fits in
gRPC's metadata and nothing oversized is stored on a session or an xDR."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from online_app import LONDON, session, voice
from redis_state import redis_state

from occ.api.wire import MAX_CHARS
from occ.core.errors import QUOTE_CHARS
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

REPO = Path(__file__).resolve().parents[3]
PROTOS = {pb.DESCRIPTOR: REPO / "proto/occ/v1/charging.proto", admin.DESCRIPTOR: REPO / "proto/occ/v1/admin.proto"}
TEN_EUR = 10_000_000


async def rejected(call) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT, failure.value.details()
    return failure.value.details()


async def test_a_huge_called_party_is_invalid_argument_quoting_a_short_prefix(charging):
    await charging.account("len", balance=TEN_EUR)
    request = pb.AuthorizeRequest(subscriber="len", service=pb.VOICE, called_party="4" * 20_000)
    details = await rejected(charging.charging.Authorize(request))
    assert details.startswith("called_party: must be at most 256 characters, got '4444")
    assert "(20000 characters)" in details and len(details) < 200


async def test_a_huge_calling_party_is_refused_and_nothing_is_stored(charging):
    await charging.account("len", balance=TEN_EUR)
    before = await redis_state(charging.app.redis)
    request = session("len-1", 0, "len", voice(60))
    request.calling_party = "5" * 30_000
    details = await rejected(charging.charging.StartSession(request))
    assert details.startswith("calling_party: must be at most 256 characters")
    assert await redis_state(charging.app.redis) == before
    request.calling_party = "5" * 256  # the limit itself is fine
    assert (await charging.charging.StartSession(request)).result_code == pb.SUCCESS


async def test_an_unratable_called_party_is_quoted_by_its_prefix_only(charging):
    await charging.account("len", balance=TEN_EUR)
    called = "+44" + "x" * 250
    details = await rejected(charging.charging.Authorize(pb.AuthorizeRequest(subscriber="len", service=pb.VOICE,
                                                                              called_party=called)))  # fmt: skip
    assert details.startswith("called_party: number '+44xxx") and "(253 characters)" in details
    assert "x" * (QUOTE_CHARS + 1) not in details


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("Transact", admin.TransactionRequest(account_id="len", type=admin.TOP_UP, amount_micros=1,
                                              idempotency_key="k", ledger_code=1, description="d" * 1025),
         "description"),
        ("UpdateAccount", admin.UpdateAccountRequest(id="len", prepaid_tax=admin.PrepaidTax(tax_code="T" * 21)),
         "prepaid_tax.tax_code"),
        ("AbortSession", admin.AbortSessionRequest(account_id="len", session_id="s", reason="r" * 257), "reason"),
        ("LoadTariff", admin.LoadTariffRequest(directory="/" * 4097), "directory"),
    ],
)  # fmt: skip
async def test_admin_strings_are_checked_the_same_way(charging, method, request_, field):
    await charging.account("len", balance=TEN_EUR)
    details = await rejected(getattr(charging.admin, method)(request_))
    assert details.startswith(f"{field}: must be at most {MAX_CHARS[field.rsplit('.', 1)[-1]]} characters")


async def test_a_stream_request_over_a_limit_gets_a_stream_error_and_the_stream_goes_on(charging):
    await charging.account("len", balance=TEN_EUR)
    call = charging.charging.Stream()
    long = pb.AuthorizeRequest(subscriber="len", service=pb.VOICE, called_party="4" * 300)
    await call.write(pb.StreamRequest(correlation_id=1, authorize=long))
    answer = await call.read()
    assert answer.error.grpc_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert answer.error.message.startswith("called_party: must be at most 256 characters")
    await call.write(pb.StreamRequest(correlation_id=2, authorize=pb.AuthorizeRequest(
        subscriber="len", service=pb.VOICE, called_party=LONDON)))  # fmt: skip
    assert (await call.read()).authorize.result_code == pb.SUCCESS
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK


def request_string_fields() -> list[tuple[Path, str, str]]:
    """(proto file, message, field) of every string field a client can send, nested messages included."""
    found, seen = [], set()

    def walk(message, path: Path) -> None:
        if message.full_name in seen or not message.full_name.startswith("occ.v1."):
            return
        seen.add(message.full_name)
        for field in message.fields:
            if field.type == FieldDescriptor.TYPE_STRING:
                found.append((path, message.name, field.name))
            elif field.type == FieldDescriptor.TYPE_MESSAGE and not field.message_type.GetOptions().map_entry:
                walk(field.message_type, path)  # (a map's keys are checked by its owner)

    for file, path in PROTOS.items():
        for service in file.services_by_name.values():
            for method in service.methods:
                walk(method.input_type, path)
    return found


def test_every_request_string_has_its_limit_documented_beside_it_and_checked():
    fields = request_string_fields()
    assert len(fields) >= 20
    for path, message, field in fields:
        block = re.search(rf"\nmessage {message} {{\n(.*?)\n}}", path.read_text(), re.S)
        assert block, f"{message} not found in {path.name}"
        line = re.search(rf"\bstring {field} = \d+;\s*//[^\n]*?≤ (\d+) chars", block.group(1))
        assert line, f"{path.name}: {message}.{field} documents no length limit"
        assert int(line.group(1)) == MAX_CHARS[field], f"{message}.{field}: proto and wire.MAX_CHARS differ"


def test_the_64_kib_message_limit_is_documented():
    for path in [*PROTOS.values(), REPO / "README.md"]:
        assert "64 KiB" in path.read_text(), path

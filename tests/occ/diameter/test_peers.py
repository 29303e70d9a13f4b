"""The base protocol of the gateway over bare TCP: capabilities exchange and the allowed-peer list, watchdog both
ways, DPR, and bad input (protocol errors with Failed-AVP, broken framing, a CCR before CER, a flood): each gets the
protocol's answer or a closed connection with a log line, other peers keep being served, nothing is half-charged."""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest
from diameter.message import Avp, Message
from diameter.message.commands import DeviceWatchdogAnswer, DeviceWatchdogRequest, DisconnectPeerRequest
from diameter_peer import EVENT, INITIAL, NAI, SMS, Wire, allowed, ask, call_to, free_port, session_id
from online_app import serving
from prometheus_client import REGISTRY

from occ.diameter import peer as peer_module
from occ.v1 import admin_pb2 as admin

ACCOUNT = "alice"
SMS_MICROS = 50_000


@pytest.fixture
async def gateway(redis_url, tmp_path):
    options = {"diameter_port": free_port(), "diameter_peers": allowed(), "diameter_watchdog_s": 30.0}
    async with serving(redis_url, tmp_path, **options) as client:
        await client.account(ACCOUNT, balance=1_000_000)
        client.port = client.app.diameter.port
        yield client


async def opened(port: int) -> Wire:
    wire = Wire(port)
    answer = await asyncio.to_thread(wire.capabilities)
    assert answer.result_code == 2001
    return wire


async def still_served(port: int) -> None:
    """A fresh peer gets through CER and a DWR: the gateway serves on."""
    wire = await opened(port)
    try:
        answer = await asyncio.to_thread(wire.exchange, watchdog_request())
        assert answer.result_code == 2001
    finally:
        wire.close()


def watchdog_request() -> DeviceWatchdogRequest:
    request = DeviceWatchdogRequest()
    request.origin_host, request.origin_realm = b"client.test", b"test.example"
    return request


def sms(wire: Wire, **options) -> Message:
    request = wire.ccr(session_id(), EVENT, 0, context=SMS, subscription=(NAI, ACCOUNT), **options)
    request.requested_service_unit = ask(messages=1)
    return request


def failed_code(answer: Message) -> int:
    [failed] = answer.failed_avp
    [avp] = failed.additional_avps
    return avp.code


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_capabilities_exchange_answers_what_the_issue_lists(gateway):
    wire = Wire(gateway.port)
    answer = await asyncio.to_thread(wire.capabilities)
    wire.close()
    assert answer.result_code == 2001
    assert (answer.origin_host, answer.origin_realm) == (b"occ.localdomain", b"localdomain")
    assert answer.auth_application_id == [4]
    assert answer.supported_vendor_id == [10415]
    assert (answer.vendor_id, answer.product_name) == (0, "OCC")
    assert answer.host_ip_address == [(1, "127.0.0.1")]
    assert answer.vendor_specific_application_id == []


async def test_credit_control_advertised_under_the_3gpp_vendor_is_answered_in_kind(gateway):
    wire = Wire(gateway.port)
    answer = await asyncio.to_thread(wire.capabilities, vendor_specific=True)
    wire.close()
    assert answer.result_code == 2001
    [vendor_app] = answer.vendor_specific_application_id
    assert (vendor_app.vendor_id, vendor_app.auth_application_id) == (10415, 4)


@pytest.mark.parametrize(("host", "source", "applications", "code"), [
    ("stranger.test", "127.0.0.1", (4,), 3010),  # an Origin-Host not on the list
    ("client.test", "127.0.0.2", (4,), 3010),  # an allowed Origin-Host from another address
    ("client.test", "127.0.0.1", (16777238,), 5010),  # Gx only: no common application
])  # fmt: skip
async def test_a_peer_that_may_not_connect_is_refused_and_closed(gateway, host, source, applications, code, caplog):
    caplog.set_level(logging.INFO, logger="occ.diameter")
    wire = Wire(gateway.port, source=source)
    answer = await asyncio.to_thread(wire.capabilities, host, applications)
    assert answer.result_code == code
    assert answer.header.is_error == (code == 3010)
    assert await asyncio.to_thread(wire.receive) is None  # closed
    wire.close()
    assert any("capabilities exchange refused" in getattr(r, "reason", "") for r in caplog.records)
    await still_served(gateway.port)


async def test_a_ccr_before_cer_is_answered_unknown_peer_and_closed(gateway):
    wire = Wire(gateway.port)
    answer = await asyncio.to_thread(wire.exchange, sms(wire))
    assert (answer.result_code, answer.header.is_error) == (3010, True)
    assert await asyncio.to_thread(wire.receive) is None
    wire.close()
    assert (await gateway.balance(ACCOUNT)).balance_micros == 1_000_000
    await still_served(gateway.port)


def _without(request: Message, code: int) -> bytes:
    """``request`` encoded with every AVP of ``code`` left out."""
    return Message(request.header, [avp for avp in request.avps if avp.code != code]).as_bytes()


def _with_extra(request: Message, *extra: Avp) -> bytes:
    return Message(request.header, [*request.avps, *extra]).as_bytes()


async def test_protocol_errors_name_the_avp_and_charge_nothing(gateway):
    wire = await opened(gateway.port)
    base = sms(wire)
    base.header.hop_by_hop_identifier = base.header.end_to_end_identifier = 77
    short_number = Avp(415, 0, b"\x00\x01", 0x40)  # CC-Request-Number of 2 bytes instead of 4
    cases = {
        "invalid value": (_with_extra(Message(base.header, [a for a in base.avps if a.code != 415]), short_number),
                          5004, 415),
        "missing": (_without(base, 461), 5005, 461),  # Service-Context-Id
        "twice": (_with_extra(base, Avp.new(416, value=4)), 5009, 416),  # CC-Request-Type
        "unknown mandatory": (_with_extra(base, Avp(99999, 0, b"\x00\x00\x00\x01", 0x40)), 5001, 99999),
        "bad service": (_with_extra(Message(base.header, [a for a in base.avps if a.code != 461]),
                                    Avp.new(461, value="32299@example.org")), 5004, 461),
    }  # fmt: skip
    for name, (data, code, avp_code) in cases.items():
        answer = await asyncio.to_thread(wire.exchange, data)
        assert answer.result_code == code, name
        assert failed_code(answer) == avp_code, name
        assert answer.find_avps((281, 0))[0].value, name  # Error-Message
    overrun = base.as_bytes() + struct.pack(">II", 263, (0x40 << 24) | 100) + b"x" * 8
    overrun = overrun[:1] + len(overrun).to_bytes(3, "big") + overrun[4:]
    answer = await asyncio.to_thread(wire.exchange, overrun)
    assert answer.result_code == 5014
    unsupported = Message.from_bytes(base.as_bytes())
    unsupported.header.command_code = 275  # Session-Termination: not served
    answer = await asyncio.to_thread(wire.exchange, Message(unsupported.header, unsupported.avps).as_bytes())
    assert (answer.result_code, answer.header.is_error) == (3001, True)
    answer = await asyncio.to_thread(wire.exchange, watchdog_request())  # the connection is still open
    assert answer.result_code == 2001
    wire.close()
    assert (await gateway.balance(ACCOUNT)).balance_micros == 1_000_000


@pytest.mark.parametrize(("name", "data"), [
    ("truncated header", b"\x01\x00\x00\x40\x80\x00\x01"),
    ("length not a multiple of 4", b"\x01\x00\x00\x15" + bytes(17)),
    ("length shorter than a header", b"\x01\x00\x00\x08" + bytes(16)),
    ("version 2", b"\x02\x00\x00\x14" + bytes(16)),
])  # fmt: skip
async def test_broken_framing_closes_the_connection_with_a_log_line(gateway, name, data, caplog):
    caplog.set_level(logging.INFO, logger="occ.diameter")
    wire = await opened(gateway.port)
    wire.send(data)
    if name == "truncated header":
        wire.sock.shutdown(2 - 1)  # SHUT_WR: end of stream in the middle of a header
    assert await asyncio.to_thread(wire.receive) is None
    wire.close()
    closes = [r.reason for r in caplog.records if r.getMessage() == "diameter peer closed"]
    assert closes and ("frame" in closes[-1] or "truncated" in closes[-1]), closes
    await still_served(gateway.port)


async def test_a_flooding_peer_gets_too_busy_and_is_charged_exactly_for_what_succeeded(gateway, monkeypatch):
    monkeypatch.setattr(peer_module, "MAX_IN_FLIGHT", 4)
    wire = await opened(gateway.port)
    burst = 40
    data = b""
    for hop in range(1, burst + 1):
        request = sms(wire)
        request.header.hop_by_hop_identifier = request.header.end_to_end_identifier = 1000 + hop
        data += request.as_bytes()
    wire.send(data)
    other = asyncio.create_task(still_served(gateway.port))
    answers = [await asyncio.to_thread(wire.receive) for _ in range(burst)]
    await other
    wire.close()
    codes = [answer.result_code for answer in answers]
    assert set(codes) <= {2001, 3004}
    assert codes.count(3004) > 0
    debited = codes.count(2001) * SMS_MICROS
    assert (await gateway.balance(ACCOUNT)).balance_micros == 1_000_000 - debited


async def test_dpr_is_answered_and_the_connection_closed(gateway):
    open_before = metric("occ_diameter_peers", state="open")
    wire = await opened(gateway.port)
    assert metric("occ_diameter_peers", state="open") == open_before + 1
    request = DisconnectPeerRequest()
    request.origin_host, request.origin_realm, request.disconnect_cause = b"client.test", b"test.example", 0
    answer = await asyncio.to_thread(wire.exchange, request)
    assert answer.result_code == 2001
    assert await asyncio.to_thread(wire.receive) is None
    wire.close()
    await asyncio.sleep(0.05)
    assert metric("occ_diameter_peers", state="open") == open_before
    assert gateway.app.diameter.peers == {}


async def test_the_gateway_sends_dwr_after_tw_and_closes_a_peer_that_leaves_it_unanswered(redis_url, tmp_path):
    options = {"diameter_port": free_port(), "diameter_peers": allowed(), "diameter_watchdog_s": 0.4}
    async with serving(redis_url, tmp_path, **options) as client:
        wire = await opened(client.app.diameter.port)
        sent_before = metric("occ_diameter_messages_total", command="DW", direction="sent", kind="request",
                             result_code="")  # fmt: skip
        request = await asyncio.to_thread(wire.receive)
        assert request.header.command_code == 280 and request.header.is_request
        answer = DeviceWatchdogAnswer()
        answer.header.hop_by_hop_identifier = request.header.hop_by_hop_identifier
        answer.header.end_to_end_identifier = request.header.end_to_end_identifier
        answer.result_code, answer.origin_host, answer.origin_realm = 2001, b"client.test", b"test.example"
        wire.send(answer)
        second = await asyncio.to_thread(wire.receive)  # answered: the peer stays, and gets the next DWR after Tw
        assert second.header.command_code == 280
        assert await asyncio.to_thread(wire.receive) is None  # that one left unanswered: closed after Tw
        wire.close()
        assert metric("occ_diameter_messages_total", command="DW", direction="sent", kind="request",
                      result_code="") >= sent_before + 2  # fmt: skip


async def test_a_peer_that_never_sends_cer_is_closed_after_tw(redis_url, tmp_path):
    options = {"diameter_port": free_port(), "diameter_peers": allowed(), "diameter_watchdog_s": 0.3}
    async with serving(redis_url, tmp_path, **options) as client:
        wire = Wire(client.app.diameter.port)
        assert await asyncio.to_thread(wire.receive) is None
        wire.close()


async def test_an_initial_request_is_refused_until_cer(gateway):
    wire = Wire(gateway.port)
    request = wire.ccr(session_id(), INITIAL, 0, subscription=(NAI, ACCOUNT))
    answer = await asyncio.to_thread(wire.exchange, request)
    wire.close()
    assert answer.result_code == 3010
    assert not await gateway.app.store.open_sessions(ACCOUNT)


async def test_asr_for_a_session_behind_a_relay_goes_over_the_relay_to_the_client(redis_url, tmp_path):
    options = {"diameter_port": free_port(), "diameter_peers": allowed("relay.test")}
    async with serving(redis_url, tmp_path, **options) as client:
        await client.account(ACCOUNT, balance=1_000_000)
        relay = Wire(client.app.diameter.port)
        assert (await asyncio.to_thread(relay.capabilities, "relay.test")).result_code == 2001
        sid = session_id()
        request = relay.ccr(sid, INITIAL, 0, subscription=(NAI, ACCOUNT))  # Origin-Host client.test, behind the relay
        request.requested_service_unit = ask(60)
        request.service_information = call_to("tel:+442079460000")
        assert (await asyncio.to_thread(relay.exchange, request)).result_code == 2001
        abort = admin.AbortSessionRequest(account_id=ACCOUNT, session_id=sid, reason="test")
        assert (await client.admin.AbortSession(abort)).aborted
        asr = await asyncio.to_thread(relay.receive)
        relay.close()
        assert (asr.header.command_code, asr.session_id) == (274, sid)
        assert (asr.destination_host, asr.destination_realm) == (b"client.test", b"test.example")

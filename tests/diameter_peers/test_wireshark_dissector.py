"""Every kind of message OCC's Diameter gateway writes, captured on loopback and decoded by Wireshark's own Diameter
dissector (tshark): nothing malformed, no expert item of severity error.

The exchanges are the integration tests' (python-diameter's client node, ``tests/diameter_peer.py``): CER/CEA,
CCR/CCA INITIAL (two rating groups), UPDATE, TERMINATE and EVENT (direct debit, refund, balance check, price
enquiry with Cost-Information), a credit-limit answer with Final-Unit-Indication, error answers with Failed-AVP
(5005 from a bare connection), DWR/DWA both ways, RAR/RAA on a top-up, ASR/ASA on an administrator's abort, and
DPR/DPA when the node stops.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from capture import EXPERT_ERROR, SEVERITIES, Capture
from diameter.message.avp.grouped import MultipleServicesCreditControl
from diameter.message.commands import DeviceWatchdogRequest
from diameter_peer import (
    E164,
    EVENT,
    INITIAL,
    SMS,
    TERMINATE,
    UPDATE,
    Peer,
    Wire,
    allowed,
    ask,
    call_to,
    free_port,
    session_id,
    sms_to,
    used,
)
from online_app import LONDON, serving
from peer_processes import require

from occ.v1 import admin_pb2 as admin

pytestmark = [pytest.mark.diameter_peers, pytest.mark.timeout(180)]

SUBSCRIBER, POOR = "447700900001", "447700900002"
CER, RAR, ASR, CCR, DWR, DPR = 257, 258, 274, 272, 280, 282


def mscc(rating_group: int, *, requested=None, spent=None) -> MultipleServicesCreditControl:
    item = MultipleServicesCreditControl(rating_group=rating_group, requested_service_unit=requested)
    if spent is not None:
        item.used_service_unit = [spent]
    return item


def charged_calls(peer: Peer) -> list[int]:
    """A session on two rating groups (I, U, T), every EVENT action, and a start refused for credit (4012)."""
    sid, codes = session_id(), []
    start = peer.ccr(sid, INITIAL, 0, subscription=(E164, SUBSCRIBER))
    start.service_information = call_to(f"tel:{LONDON}")
    start.multiple_services_credit_control = [mscc(100, requested=ask(60)), mscc(101, requested=ask(30))]
    codes.append(peer.send(start).result_code)
    update = peer.ccr(sid, UPDATE, 1)
    update.multiple_services_credit_control = [mscc(100, requested=ask(60), spent=used(60)), mscc(101, spent=used(5))]
    codes.append(peer.send(update).result_code)
    end = peer.ccr(sid, TERMINATE, 2)
    end.multiple_services_credit_control = [mscc(100, spent=used(17))]
    codes.append(peer.send(end).result_code)
    for action in (0, 1, 2, 3):  # DIRECT_DEBITING, REFUND_ACCOUNT, CHECK_BALANCE, PRICE_ENQUIRY
        event = peer.ccr(session_id(), EVENT, 0, context=SMS, subscription=(E164, SUBSCRIBER))
        event.requested_action = action
        event.service_information = sms_to("+447700900009")
        event.multiple_services_credit_control = [mscc(300, requested=ask(messages=1))]
        codes.append(peer.send(event).result_code)
    short = peer.ccr(session_id(), INITIAL, 0, subscription=(E164, POOR))
    short.service_information = call_to(f"tel:{LONDON}")
    short.multiple_services_credit_control = [mscc(100, requested=ask(3600))]
    codes.append(peer.send(short).result_code)
    return codes


def open_session(peer: Peer) -> str:
    sid = session_id()
    start = peer.ccr(sid, INITIAL, 0, subscription=(E164, SUBSCRIBER))
    start.service_information = call_to(f"tel:{LONDON}")
    start.multiple_services_credit_control = [mscc(100, requested=ask(60))]
    assert peer.send(start).result_code == 2001
    return sid


def bare_connection(port: int) -> int:
    """From a bare connection: a DWR (the node never needs one: the gateway's DWRs keep it busy), then a CCR-I with
    no Subscription-Id, answered 5005 with Failed-AVP; its Result-Code."""
    wire = Wire(port)
    try:
        assert wire.capabilities().result_code == 2001
        watchdog = DeviceWatchdogRequest()
        watchdog.origin_host, watchdog.origin_realm = b"client.test", b"test.example"
        assert wire.exchange(watchdog).result_code == 2001
        request = Wire.ccr(session_id(), INITIAL, 0)
        request.multiple_services_credit_control = [mscc(100, requested=ask(60))]
        return wire.exchange(request).result_code
    finally:
        wire.close()


async def test_wireshark_decodes_every_message_occ_sends_without_error(redis_url: str, tmp_path: Path) -> None:
    require("dumpcap", "tshark")
    port = free_port()
    options = {"diameter_port": port, "diameter_peers": allowed(), "diameter_watchdog_s": 0.5}
    with Capture(tmp_path / "gateway.pcapng", port) as capture:
        async with serving(redis_url, tmp_path / "occ", **options) as client:
            await client.account(SUBSCRIBER, balance=20_000_000)
            await client.account(POOR, balance=100_000)
            peer = Peer(port)
            peer.node.start()
            try:
                await asyncio.to_thread(peer.app.wait_for_ready, 10)
                codes = await asyncio.to_thread(charged_calls, peer)
                assert codes[:7] == [2001] * 7 and codes[7] in (2001, 4012), codes
                sid = await asyncio.to_thread(open_session, peer)
                top_up = admin.TransactionRequest(account_id=SUBSCRIBER, type=admin.TOP_UP, amount_micros=1_000_000,
                                                  idempotency_key="top-up", ledger_code=400000009)  # fmt: skip
                await client.admin.Transact(top_up)
                assert (await asyncio.to_thread(peer.received.get, True, 10)).header.command_code == RAR
                await client.admin.AbortSession(admin.AbortSessionRequest(account_id=SUBSCRIBER, session_id=sid))
                assert (await asyncio.to_thread(peer.received.get, True, 10)).header.command_code == ASR
                await asyncio.to_thread(time.sleep, 1.5)  # quiet for 3 × Tw: the gateway's DWRs, the node's DWAs
                assert await asyncio.to_thread(bare_connection, port) == 5005
            finally:
                await asyncio.to_thread(peer.node.stop, 5)  # DPR/DPA
            await asyncio.sleep(0.5)

    sent = capture.commands()
    ours = {(code, request) for source, code, request in sent if source == port}
    theirs = {(code, request) for source, code, request in sent if source != port}
    # OCC answered every kind of request and sent its own (DWR, RAR, ASR); the client answered them.
    assert {(CER, False), (CCR, False), (DWR, False), (DPR, False), (DWR, True), (RAR, True), (ASR, True)} <= ours
    assert {(CER, True), (CCR, True), (DWR, True), (DPR, True), (DWR, False), (RAR, False), (ASR, False)} <= theirs
    result_codes = {int(code) for row in capture.fields(f"tcp.srcport == {port}", "diameter.Result-Code")
                    for code in row[0].split("|") if code}  # fmt: skip
    assert {2001, 5005} <= result_codes, result_codes
    assert capture.fields(f"tcp.srcport == {port} && diameter.Cost-Information", "frame.number")
    assert capture.fields(f"tcp.srcport == {port} && diameter.Failed-AVP", "frame.number")

    problems = capture.problems()
    errors = [p for p in problems if p.from_port == port and p.severity == SEVERITIES[EXPERT_ERROR]]
    assert errors == [], errors

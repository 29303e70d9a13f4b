"""Server-initiated requests: an administrator's abort becomes an ASR and a top-up a RAR, sent to the peer that
opened the session (the Origin-Host of its CCR-INITIAL), received by python-diameter's client node."""

from __future__ import annotations

import asyncio
import queue
import time

from diameter_peer import (
    E164,
    INITIAL,
    TERMINATE,
    UPDATE,
    Peer,
    allowed,
    ask,
    call_to,
    connected,
    free_port,
    session_id,
    used,
)
from online_app import LONDON, serving
from prometheus_client import REGISTRY

from occ.v1 import admin_pb2 as admin

SUBSCRIBER = "447700900001"


def start_session(peer: Peer, sid: str):
    request = peer.ccr(sid, INITIAL, 0, subscription=(E164, SUBSCRIBER))
    request.service_information = call_to(f"tel:{LONDON}")
    request.add_multiple_services_credit_control(requested_service_unit=ask(60), rating_group=100)
    return peer.send(request)


def notice(peer: Peer) -> object:
    return peer.received.get(timeout=10)


async def test_abort_sends_asr_and_top_up_sends_rar_to_the_session_owner(redis_url, tmp_path):
    port = free_port()
    async with serving(redis_url, tmp_path, diameter_port=port, diameter_peers=allowed()) as client:
        await client.account(SUBSCRIBER, balance=5_000_000)
        peer = Peer(port)
        peer.node.start()
        try:
            await asyncio.to_thread(peer.app.wait_for_ready, 10)
            topped, aborted = session_id(), session_id()
            assert (await asyncio.to_thread(start_session, peer, topped)).result_code == 2001
            assert (await asyncio.to_thread(start_session, peer, aborted)).result_code == 2001

            top_up = admin.TransactionRequest(account_id=SUBSCRIBER, type=admin.TOP_UP, amount_micros=1_000_000,
                                              idempotency_key="top-up-1", ledger_code=400000009)  # fmt: skip
            await client.admin.Transact(top_up)
            rars = [await asyncio.to_thread(notice, peer) for _ in range(2)]  # both sessions are open
            assert {m.header.command_code for m in rars} == {258}
            assert {m.session_id for m in rars} == {topped, aborted}
            assert {m.re_auth_request_type for m in rars} == {0}
            assert {m.destination_host for m in rars} == {b"client.test"}

            def update_after_rar():
                request = peer.ccr(topped, UPDATE, 1)
                request.add_multiple_services_credit_control(requested_service_unit=ask(60),
                                                             used_service_unit=used(30), rating_group=100)  # fmt: skip
                return peer.send(request)

            assert (await asyncio.to_thread(update_after_rar)).result_code == 2001

            request = admin.AbortSessionRequest(account_id=SUBSCRIBER, session_id=aborted, reason="fraud")
            abort = await client.admin.AbortSession(request)
            assert abort.aborted
            asr = await asyncio.to_thread(notice, peer)
            assert (asr.header.command_code, asr.session_id, asr.auth_application_id) == (274, aborted, 4)

            def terminate(sid: str, number: int):
                request = peer.ccr(sid, TERMINATE, number)
                request.add_multiple_services_credit_control(used_service_unit=used(20), rating_group=100)
                return peer.send(request)

            assert (await asyncio.to_thread(terminate, aborted, 1)).result_code == 2001
            assert (await asyncio.to_thread(terminate, topped, 2)).result_code == 2001
            assert not await client.app.store.open_sessions(SUBSCRIBER)
            try:
                unexpected = peer.received.get_nowait()
            except queue.Empty:
                unexpected = None
            assert unexpected is None
        finally:
            await asyncio.to_thread(peer.node.stop, 5)


async def test_the_gateway_watchdog_keeps_a_quiet_python_diameter_node_connected(redis_url, tmp_path):
    port = free_port()
    options = {"diameter_port": port, "diameter_peers": allowed(), "diameter_watchdog_s": 0.5}
    async with serving(redis_url, tmp_path, **options) as client:
        await client.account(SUBSCRIBER, balance=5_000_000)
        gateway = client.app.diameter

        def quiet_then_call():
            with connected(port) as peer:
                time.sleep(2.0)  # four times Tw without a word from the client: the gateway sends DWRs, it answers
                return start_session(peer, session_id())

        answers_before = _watchdog_answers()
        assert (await asyncio.to_thread(quiet_then_call)).result_code == 2001
        assert _watchdog_answers() >= answers_before + 2
        await asyncio.sleep(0.1)
        assert gateway.peers == {}  # the node's DPR on stop closed it


def _watchdog_answers() -> float:
    labels = {"command": "DW", "direction": "received", "kind": "answer", "result_code": "2001"}
    return REGISTRY.get_sample_value("occ_diameter_messages_total", labels) or 0.0

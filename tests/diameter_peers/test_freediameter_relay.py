"""OCC behind a Diameter relay agent no one here wrote: freeDiameter's daemon between a client and OCC's gateway.

The client never talks to OCC: its CER is the relay's, its CCRs are routed by Destination-Realm and come back with
the relay's Route-Record; OCC allows the relay (not the client) as its peer. Sessions are charged to the micro-unit,
and OCC's own requests (RAR on a top-up, ASR on an abort) must reach the client that opened the session: they go
to the relay with the client as Destination-Host, and the relay forwards them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from diameter.message import Message
from diameter_peer import free_port
from online_app import serving
from peer_processes import require
from relay_agent import IDENTITY, RelayAgent

from benchmarks.online.diameter_client import INITIAL, TERMINATE, UPDATE, DiameterClient, voice_ccr
from occ.v1 import admin_pb2 as admin

pytestmark = [pytest.mark.diameter_peers, pytest.mark.timeout(120)]

CLIENT, CLIENT_REALM = "client.test", "test.example"
OCC_HOST, OCC_REALM = "occ.localdomain", "localdomain"
SUBSCRIBER = "447700900001"
MOBILE = "447700900123"  # UK_MOBILE: 0.05 to connect, then 0.12/min per second, at any hour
OPENING = 10_000_000
RAR, ASR = 258, 274


def ccr(session_id: str, request_type: int, number: int, **units: int):
    return voice_ccr(CLIENT, CLIENT_REALM, session_id, request_type, number, SUBSCRIBER, MOBILE,
                     destination_realm=OCC_REALM, **units)  # fmt: skip


async def test_sessions_and_server_requests_pass_through_a_freediameter_relay(redis_url: str, tmp_path: Path) -> None:
    require("freeDiameterd")
    port = free_port()
    received: asyncio.Queue[Message] = asyncio.Queue()
    async with serving(redis_url, tmp_path / "occ", diameter_port=port, diameter_peers=f"{IDENTITY}=127.0.0.1") as occ:
        await occ.account(SUBSCRIBER, balance=OPENING)
        relay = RelayAgent(OCC_HOST, port, (CLIENT,), tmp_path / "relay")
        try:
            await asyncio.to_thread(relay.start)  # OCC answers the relay's CER on this loop meanwhile
            assert IDENTITY in occ.app.diameter.peers and CLIENT not in occ.app.diameter.peers
            client = DiameterClient(CLIENT, CLIENT_REALM, on_request=received.put_nowait)
            cea = await client.connect("127.0.0.1", relay.port)
            assert cea.origin_host == IDENTITY.encode()

            paid = f"{CLIENT};1;relayed"
            start = await client.request(ccr(paid, INITIAL, 0, requested_s=60))
            assert (start.result_code, start.origin_host) == (2001, OCC_HOST.encode())
            update = await client.request(ccr(paid, UPDATE, 1, requested_s=60, used_s=30))
            end = await client.request(ccr(paid, TERMINATE, 2, used_s=12))
            assert (update.result_code, end.result_code) == (2001, 2001)
            assert (await occ.balance(SUBSCRIBER)).balance_micros == OPENING - (50_000 + 2_000 * 42)

            aborted = f"{CLIENT};2;relayed"
            assert (await client.request(ccr(aborted, INITIAL, 0, requested_s=60))).result_code == 2001
            top_up = admin.TransactionRequest(account_id=SUBSCRIBER, type=admin.TOP_UP, amount_micros=1_000_000,
                                              idempotency_key="relay-top-up", ledger_code=400000009)  # fmt: skip
            await occ.admin.Transact(top_up)
            rar = await asyncio.wait_for(received.get(), 10)
            await occ.admin.AbortSession(admin.AbortSessionRequest(account_id=SUBSCRIBER, session_id=aborted))
            asr = await asyncio.wait_for(received.get(), 10)
            for request, command in ((rar, RAR), (asr, ASR)):
                assert (request.header.command_code, request.session_id) == (command, aborted)
                assert (request.destination_host, request.destination_realm) == (CLIENT.encode(), CLIENT_REALM.encode())
                assert request.origin_host == OCC_HOST.encode()
            closed = await client.request(ccr(aborted, TERMINATE, 1, used_s=5))
            assert closed.result_code == 2001
            assert not await occ.app.store.open_sessions(SUBSCRIBER)
            await client.close()
        finally:
            relay.stop()

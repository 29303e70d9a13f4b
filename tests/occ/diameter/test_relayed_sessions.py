"""A session opened through a relay agent (tests/diameter_peers runs freeDiameter as one): its CCR-INITIAL comes on
the relay's connection with the client's own Origin-Host and Origin-Realm, so OCC's ASR and RAR for it go out on the
relay's connection addressed to the client (Destination-Host, Destination-Realm), for the relay to forward. Sent to
the relay's own identity, a relay that runs no credit-control application refuses them."""

from __future__ import annotations

import asyncio

from diameter_peer import CLIENT_REALM, E164, INITIAL, Wire, allowed, ask, call_to, free_port, session_id
from online_app import LONDON, serving

from occ.v1 import admin_pb2 as admin

RELAY, CLIENT = "relay.test", "client.test"
SUBSCRIBER = "447700900001"


def relayed_start(wire: Wire, sid: str) -> int:
    """The relay's CER, then a CCR-INITIAL of the client's, as a relay forwards it (Route-Record naming the client)."""
    assert wire.capabilities(host=RELAY, applications=(0xFFFFFFFF,)).result_code == 2001
    request = Wire.ccr(sid, INITIAL, 0, host=CLIENT, subscription=(E164, SUBSCRIBER))
    request.service_information = call_to(f"tel:{LONDON}")
    request.add_multiple_services_credit_control(requested_service_unit=ask(60), rating_group=100)
    request.route_record = [RELAY.encode()]
    return wire.exchange(request).result_code


async def test_server_requests_for_a_relayed_session_are_addressed_to_the_client_through_the_relay(redis_url, tmp_path):
    port = free_port()
    async with serving(redis_url, tmp_path, diameter_port=port, diameter_peers=allowed(RELAY)) as client:
        await client.account(SUBSCRIBER, balance=5_000_000)
        wire = await asyncio.to_thread(Wire, port)
        try:
            sid = session_id()
            assert await asyncio.to_thread(relayed_start, wire, sid) == 2001
            assert client.app.diameter.sessions[sid].peer == RELAY
            await client.admin.AbortSession(admin.AbortSessionRequest(account_id=SUBSCRIBER, session_id=sid))
            asr = await asyncio.to_thread(wire.receive)
        finally:
            wire.close()
    assert (asr.header.command_code, asr.session_id) == (274, sid)
    assert (asr.destination_host, asr.destination_realm) == (CLIENT.encode(), CLIENT_REALM.encode())

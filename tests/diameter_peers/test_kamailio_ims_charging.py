"""A real network element charging through OCC: Kamailio's ims_charging (the Ro client of an IMS S-CSCF, over its
own Diameter stack cdp) authorises SIP calls that SIPp places through it, and OCC's balance and xDRs must match
what Kamailio reported on the wire, to the micro-unit.

ims_charging runs outside an IMS core: it needs ims_dialog, tm, cdp and cdp_avp only (no usrloc, registrar or
HSS), so a plain proxy config is enough (``kamailio/kamailio.cfg``). Every call is CCR-I on the INVITE, CCR-U
``timer_buffer`` seconds before each grant runs out, CCR-T on the BYE. The capture of the Ro link (dumpcap) is
the witness: the seconds Kamailio reported in its Used-Service-Units are priced by hand from the example tariff
and compared with what OCC charged. Wireshark's dissector must find nothing wrong in what OCC sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from pathlib import Path

import pytest
from capture import EXPERT_ERROR, SEVERITIES, Capture
from diameter.message.commands import CreditControlAnswer, CreditControlRequest
from diameter_peer import free_port
from kamailio_proxy import ORIGIN_HOST, REALM, KamailioProxy, answering_party, place_calls
from online_app import serving, settle_everything
from peer_processes import PeerProcess, require
from sqlalchemy import select

from occ.v1 import admin_pb2 as admin
from settlement.store.schema import xdrs

pytestmark = [pytest.mark.diameter_peers, pytest.mark.timeout(300)]

CALLER, BROKE = "447700900001", "447700900002"
MOBILE = "447700900123"  # UK_MOBILE on the example tariff's retail plan: 0.05 to connect, then 0.12/min per second
CONNECT_MICROS, PER_SECOND_MICROS = 50_000, 2_000
OPENING_MICROS = 10_000_000
CALLS, HOLD_MS = 2, 7_000


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: the calls take real seconds, and the store's SQL is not what this test is about."""
    path = tmp_path / "occ.sqlite3"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{path}"


def mobile_cost(used_s: int) -> int:
    return CONNECT_MICROS + PER_SECOND_MICROS * used_s if used_s else 0


async def finished(process: PeerProcess, timeout_s: float) -> int:
    """The exit status of a peer program, waited for without blocking the event loop OCC serves on."""
    return await asyncio.to_thread(process.wait, timeout_s)


async def peer_open(gateway, host: str, timeout_s: float) -> None:
    """Wait for the peer's CER (cdp tries to connect every Tc = 2 s)."""
    deadline = time.monotonic() + timeout_s
    while host not in gateway.peers:
        assert time.monotonic() < deadline, f"no CER from {host} after {timeout_s:g} s"
        await asyncio.sleep(0.1)


async def ended(client, account: str, timeout_s: float) -> None:
    """Wait until the account has no open session (Kamailio sends its CCR-T after the BYE is answered)."""
    deadline = time.monotonic() + timeout_s
    while await client.app.store.open_sessions(account):
        assert time.monotonic() < deadline, f"{account} still has open sessions after {timeout_s:g} s"
        await asyncio.sleep(0.1)


def used_seconds_by_session(capture: Capture, occ_port: int) -> dict[str, int]:
    """Seconds Kamailio reported per Ro session (Used-Service-Unit CC-Time over its CCR-U and CCR-T), as sent."""
    used: dict[str, int] = defaultdict(int)
    for port, message in capture.messages():
        if port != occ_port and isinstance(message, CreditControlRequest):
            for mscc in message.multiple_services_credit_control:
                used[message.session_id] += sum(unit.cc_time or 0 for unit in mscc.used_service_unit)
    return dict(used)


@contextlib.asynccontextmanager
async def kamailio_before_occ(redis_url: str, tmp_path: Path, peers: list[PeerProcess]):
    """OCC (gateway allowing Kamailio), Kamailio connected to it, and a capture of the Ro link running; yields
    (client, proxy, capture). Kamailio asks 4 s at a time, 2 s before a grant runs out."""
    require("kamailio", "sipp", "dumpcap", "tshark")
    occ_port = free_port()
    proxy = KamailioProxy(occ_port=occ_port, workdir=tmp_path / "kamailio", reserve_s=4, interim_s=4, timer_buffer_s=2)
    settings = {"diameter_port": occ_port, "diameter_peers": f"{ORIGIN_HOST}=127.0.0.1", "diameter_origin_realm": REALM}
    async with serving(redis_url, tmp_path / "occ", **settings) as client:
        try:
            with Capture(tmp_path / "ro.pcapng", occ_port) as capture:
                proxy.start()
                peers.append(proxy.process)
                await peer_open(client.app.diameter, ORIGIN_HOST, timeout_s=30)
                await asyncio.sleep(1)  # OCC has sent its CEA; cdp's side of the handshake ends when it has read it
                yield client, proxy, capture
                await asyncio.sleep(0.5)  # the last CCA on the wire before the capture stops
        finally:
            for peer in reversed(peers):
                peer.stop()


async def test_sipp_calls_through_kamailio_ims_charging_are_charged_to_the_micro_unit(
    redis_url: str, tmp_path: Path, store
) -> None:
    peers: list[PeerProcess] = []
    async with kamailio_before_occ(redis_url, tmp_path, peers) as (client, proxy, capture):
        await client.account(CALLER, balance=OPENING_MICROS)
        await client.account(BROKE, balance=0)
        peers.append(callee := answering_party(proxy, calls=CALLS))
        peers.append(caller := place_calls(proxy, CALLER, MOBILE, calls=CALLS, hold_ms=HOLD_MS, name="paid"))
        assert await finished(caller, 90) == 0, caller.tail()
        assert await finished(callee, 30) == 0, callee.tail()
        peers.append(
            refused := place_calls(proxy, BROKE, MOBILE, calls=1, hold_ms=0, name="refused", scenario="refused.xml")
        )
        assert await finished(refused, 30) == 0, refused.tail()
        await ended(client, CALLER, timeout_s=20)
        still_open = await client.admin.ListSessions(admin.ListSessionsRequest(account_id=CALLER))
        await settle_everything(client, redis_url, store)
        balance = (await client.balance(CALLER)).balance_micros
        broke = (await client.balance(BROKE)).balance_micros
        occ_port = client.app.diameter.port

    kamailio_log = proxy.log()
    used = used_seconds_by_session(capture, occ_port)
    answers = [m for port, m in capture.messages() if port == occ_port and isinstance(m, CreditControlAnswer)]
    requests = [m for port, m in capture.messages() if port != occ_port and isinstance(m, CreditControlRequest)]
    kinds = sorted({m.cc_request_type for m in requests})
    with store.connect() as connection:
        rows = connection.execute(select(xdrs).where(xdrs.c.account == CALLER)).mappings().all()

    # What Kamailio did: two answered calls (INITIAL, at least one UPDATE, TERMINATE each), one refused for credit
    # (ims_charging still sends a TERMINATE for the refused call's Ro session: it reports no usage).
    assert kinds == [1, 2, 3], f"CC-Request-Types sent: {kinds}"
    initial = {a.session_id: a.result_code for a in answers if a.cc_request_type == 1}
    paid = {sid: seconds for sid, seconds in used.items() if initial.get(sid) == 2001}
    assert len(paid) == CALLS and sorted(initial.values()) == [2001] * CALLS + [4012], initial
    assert all(HOLD_MS // 1000 <= s <= HOLD_MS // 1000 + 3 for s in paid.values()), paid
    assert {a.result_code for a in answers if a.session_id in paid} == {2001}
    assert used.keys() - paid.keys() and not sum(used[sid] for sid in used.keys() - paid.keys())
    assert "charging answer 1 result 2001" in kamailio_log and "charging answer -1 result 4012" in kamailio_log

    # What OCC charged: exactly the tariff's price of what Kamailio reported, on the balance and in the xDRs.
    expected = sum(mobile_cost(s) for s in paid.values())
    assert balance == OPENING_MICROS - expected
    assert broke == 0
    charges = [r for r in rows if r["kind"] == "session"]
    assert sorted(r["session_id"] for r in charges) == sorted(paid)
    assert {r["session_id"]: r["units"] for r in charges} == paid
    assert sum(r["cost"] for r in charges) == expected  # Money columns read back as integer micro-units
    assert list(still_open.sessions) == []

    # What Wireshark says of OCC's messages: nothing malformed, no expert error.
    ours = [p for p in capture.problems() if p.from_port == occ_port and SEVERITIES.get(EXPERT_ERROR) == p.severity]
    assert ours == [], ours


async def test_kamailio_cuts_off_a_call_when_occ_grants_the_final_units(redis_url: str, tmp_path: Path, store) -> None:
    """Credit for about 10 s: OCC grants 4 s, 4 s, then the 2 s left with Final-Unit-Indication TERMINATE; Kamailio
    ends the call itself when those are used (a BYE to both parties) and reports the usage in its CCR-T. The account
    is charged exactly the price of what Kamailio reported and is never below zero."""
    peers: list[PeerProcess] = []
    opening = mobile_cost(10)  # 0.05 to connect and 10 s at 0.002/s
    async with kamailio_before_occ(redis_url, tmp_path, peers) as (client, proxy, capture):
        await client.account(CALLER, balance=opening)
        peers.append(callee := answering_party(proxy, calls=1))
        began = time.monotonic()
        peers.append(
            caller := place_calls(proxy, CALLER, MOBILE, calls=1, hold_ms=0, name="cut", scenario="cut_off.xml")
        )
        assert await finished(caller, 60) == 0, caller.tail()
        held_s = time.monotonic() - began
        assert await finished(callee, 30) == 0, callee.tail()
        await ended(client, CALLER, timeout_s=20)
        await settle_everything(client, redis_url, store)
        balance = (await client.balance(CALLER)).balance_micros
        occ_port = client.app.diameter.port

    answers = [m for port, m in capture.messages() if port == occ_port and isinstance(m, CreditControlAnswer)]
    final = [a for a in answers if any(item.final_unit_indication for item in a.multiple_services_credit_control)]
    assert final and all(item.final_unit_indication.final_unit_action == 0  # TERMINATE
                         for a in final for item in a.multiple_services_credit_control)  # fmt: skip
    [(session_id, used_s)] = used_seconds_by_session(capture, occ_port).items()
    assert 8 <= used_s <= 12 and 6 <= held_s <= 20, (used_s, held_s)
    assert balance == opening - mobile_cost(used_s) and balance >= 0
    with store.connect() as connection:
        [row] = connection.execute(select(xdrs).where(xdrs.c.session_id == session_id)).mappings().all()
    assert (row["units"], row["cost"]) == (used_s, mobile_cost(used_s))

"""CCR → engine → CCA, driven by python-diameter's own client node over loopback, against a real Redis: sessions
with several rating groups (priced exactly as the same work over gRPC), events, duplicates, and the result codes."""

from __future__ import annotations

import asyncio

import pytest
from diameter.message import Avp
from diameter.message import constants as c
from diameter.message.avp.grouped import MultipleServicesCreditControl
from diameter_peer import (
    DATA,
    E164,
    EVENT,
    IMSI,
    INITIAL,
    NAI,
    SIP_URI,
    SMS,
    TERMINATE,
    UPDATE,
    allowed,
    ask,
    call_to,
    connected,
    free_port,
    session_id,
    sms_to,
    used,
)
from online_app import LONDON, serving, session, voice

from occ.v1 import admin_pb2 as admin

SUBSCRIBER = "447700900001"
START_UNITS, USED_1, USED_2 = 120, 60, 45


@pytest.fixture
async def gateway(redis_url, tmp_path):
    async with serving(redis_url, tmp_path, diameter_port=free_port(), diameter_peers=allowed()) as client:
        client.port = client.app.diameter.port
        yield client


def mscc(rating_group: int, *, requested=None, spent=None) -> MultipleServicesCreditControl:
    return MultipleServicesCreditControl(rating_group=rating_group, requested_service_unit=requested,
                                         used_service_unit=[spent] if spent else [])  # fmt: skip


def by_group(answer) -> dict:
    return {item.rating_group: item for item in answer.multiple_services_credit_control}


async def in_thread(port: int, exchange):
    def run():
        with connected(port) as peer:
            return exchange(peer)

    return await asyncio.to_thread(run)


async def test_a_session_with_two_rating_groups_costs_what_the_same_work_costs_over_grpc(gateway):
    await gateway.account(SUBSCRIBER, balance=10_000_000)
    await gateway.account("grpc-twin", balance=10_000_000)
    sid = session_id()

    def exchange(peer):
        answers = []
        first = peer.ccr(sid, INITIAL, 0, subscription=(E164, "+" + SUBSCRIBER))
        first.service_information = call_to(f"tel:{LONDON}")
        first.multiple_services_credit_control = [mscc(100, requested=ask(START_UNITS)), mscc(200, requested=ask())]
        answers.append(peer.send(first))
        update = peer.ccr(sid, UPDATE, 1)  # no Subscription-Id: the gateway knows the session's account
        update.multiple_services_credit_control = [mscc(100, requested=ask(START_UNITS), spent=used(USED_1)),
                                                   mscc(200, spent=used(USED_1))]  # fmt: skip
        answers.append(peer.send(update))
        last = peer.ccr(sid, TERMINATE, 2, subscription=(E164, SUBSCRIBER))
        last.multiple_services_credit_control = [mscc(100, spent=used(USED_2)), mscc(200, spent=used(USED_2))]
        answers.append(peer.send(last))
        return answers

    start, update, end = await in_thread(gateway.port, exchange)
    assert [answer.result_code for answer in (start, update, end)] == [2001, 2001, 2001]
    assert [answer.cc_request_number for answer in (start, update, end)] == [0, 1, 2]
    granted = by_group(start)
    assert granted[100].granted_service_unit.cc_time == START_UNITS
    assert granted[200].granted_service_unit.cc_time == 300  # no units asked: the documented default
    assert {item.result_code for item in granted.values()} == {2001}
    assert {item.validity_time for item in granted.values()} == {60}
    assert by_group(update)[200].granted_service_unit is None  # only usage reported: nothing granted
    assert {item.result_code for item in end.multiple_services_credit_control} == {2001}

    twin = "grpc-twin-session"
    await gateway.charging.StartSession(session(twin, 0, "grpc-twin", voice(START_UNITS), voice(300, rating_group=200)))
    await gateway.charging.UpdateSession(session(twin, 1, "grpc-twin", voice(START_UNITS, USED_1),
                                                 voice(0, USED_1, rating_group=200)))  # fmt: skip
    end_items = (voice(0, USED_2), voice(0, USED_2, rating_group=200))
    await gateway.charging.EndSession(session(twin, 2, "grpc-twin", *end_items))
    diameter_balance = (await gateway.balance(SUBSCRIBER)).balance_micros
    assert diameter_balance == (await gateway.balance("grpc-twin")).balance_micros
    assert diameter_balance < 10_000_000
    assert not await gateway.app.store.open_sessions(SUBSCRIBER)


async def test_events_debit_refund_check_and_price(gateway):
    await gateway.account(SUBSCRIBER, balance=1_000_000)
    await gateway.account("poor", balance=0)

    def event(peer, action: int, *, who: tuple[int, str] = (E164, SUBSCRIBER), number: int = 0):
        request = peer.ccr(session_id(), EVENT, number, context=SMS, subscription=who)
        request.requested_action = action
        request.service_information = sms_to("+447700900002")
        request.multiple_services_credit_control = [mscc(300, requested=ask(messages=1))]
        return peer.send(request)

    def exchange(peer):
        return [event(peer, 0), event(peer, 1), event(peer, 2), event(peer, 2, who=(NAI, "poor")), event(peer, 3)]

    debit, refund, check, check_poor, price = await in_thread(gateway.port, exchange)
    assert debit.result_code == 2001
    assert by_group(debit)[300].granted_service_unit.cc_service_specific_units == 1
    assert refund.result_code == 2001
    assert (check.check_balance_result, check_poor.check_balance_result) == (0, 1)
    assert price.result_code == 2001
    cost = price.cost_information
    assert (cost.unit_value.value_digits, cost.unit_value.exponent, cost.currency_code) == (50_000, -6, 978)
    assert (await gateway.balance(SUBSCRIBER)).balance_micros == 1_000_000  # debit 0.05, refund 0.05, the rest free


async def test_a_repeated_request_gets_the_stored_answer_and_no_second_charge(gateway):
    await gateway.account(SUBSCRIBER, balance=10_000_000)
    sid = session_id()

    def exchange(peer):
        first = peer.ccr(sid, INITIAL, 0, subscription=(SIP_URI, f"sip:+{SUBSCRIBER}@ims.test;user=phone"))
        first.service_information = call_to(f"sip:{LONDON}@ims.test;user=phone")
        first.multiple_services_credit_control = [mscc(100, requested=ask(60))]
        answers = [peer.send(first)]
        first.header.is_retransmit = True
        answers.append(peer.send(first))
        last = peer.ccr(sid, TERMINATE, 1)
        last.multiple_services_credit_control = [mscc(100, spent=used(60))]
        answers.append(peer.send(last))
        answers.append(peer.send(last))  # without the T flag: a duplicate all the same
        return answers

    start, start_again, end, end_again = await in_thread(gateway.port, exchange)
    assert start.result_code == start_again.result_code == 2001
    assert by_group(start_again)[100].granted_service_unit.cc_time == by_group(start)[100].granted_service_unit.cc_time
    assert end.result_code == end_again.result_code == 2001
    assert (await gateway.balance(SUBSCRIBER)).balance_micros == 10_000_000 - 300_000  # 0.20 + 0.10, charged once


async def test_result_codes_at_command_level_and_in_every_mscc(gateway):
    await gateway.account(SUBSCRIBER, balance=400_000)  # 0.40: the first minute at peak (0.30) and 2 minutes more
    await gateway.account("empty", balance=0)
    await gateway.account("blocked", balance=5_000_000)
    await gateway.admin.UpdateAccount(admin.UpdateAccountRequest(id="blocked", status=admin.BLOCKED))
    await gateway.account("roamer", balance=5_000_000)

    def start(peer, who: tuple[int, str], called: str = f"tel:{LONDON}", *, seconds: int = 600):
        request = peer.ccr(session_id(), INITIAL, 0, subscription=who)
        request.service_information = call_to(called)
        request.multiple_services_credit_control = [mscc(100, requested=ask(seconds)), mscc(101, requested=ask(60))]
        return peer.send(request)

    def unknown_session(peer):
        request = peer.ccr(session_id(), UPDATE, 1, subscription=(E164, SUBSCRIBER))
        request.multiple_services_credit_control = [mscc(100, requested=ask(60), spent=used(10))]
        return peer.send(request)

    def exchange(peer):
        return {
            "short": start(peer, (E164, SUBSCRIBER)),
            "empty": start(peer, (NAI, "empty")),
            "blocked": start(peer, (NAI, "blocked")),
            "unknown": start(peer, (IMSI, "001010123456789")),
            "unrated": start(peer, (NAI, "roamer"), "tel:+881612345678"),  # satellite: not sold on the plan
            "no session": unknown_session(peer),
        }

    answers = await in_thread(gateway.port, exchange)
    expected = {"empty": 4012, "blocked": 4010, "unknown": 5030, "unrated": 5031, "no session": 5002}
    for name, code in expected.items():
        answer = answers[name]
        assert answer.result_code == code, name
        assert answer.multiple_services_credit_control, name
        assert {item.result_code for item in answer.multiple_services_credit_control} == {code}, name
    short = answers["short"]
    assert short.result_code == 2001
    items = by_group(short)
    granted = sum(item.granted_service_unit.cc_time for item in items.values() if item.granted_service_unit)
    assert 60 <= granted < 600 + 60, "what the credit covers, less than asked"
    assert any(item.final_unit_indication is not None and item.final_unit_indication.final_unit_action == 0
               for item in items.values())  # fmt: skip


async def test_data_by_octets_and_a_command_level_quota(gateway):
    await gateway.account(SUBSCRIBER, balance=10_000_000)
    sid = session_id()

    def exchange(peer):
        first = peer.ccr(sid, INITIAL, 0, context="8.32251@3gpp.org", subscription=(E164, SUBSCRIBER))
        first.requested_service_unit = ask(octets=1_048_576)
        answers = [peer.send(first)]
        last = peer.ccr(sid, TERMINATE, 1, context=DATA)
        last.used_service_unit = [used(octets=524_288)]
        answers.append(peer.send(last))
        return answers

    start, end = await in_thread(gateway.port, exchange)
    assert start.result_code == end.result_code == 2001
    assert start.granted_service_unit.cc_total_octets == 1_048_576
    assert start.multiple_services_credit_control == []
    assert (await gateway.balance(SUBSCRIBER)).balance_micros == 10_000_000 - 1_000_000  # half a MiB at 2.00/MiB


async def test_a_store_outage_is_answered_too_busy_and_charges_nothing(redis_server, tmp_path):
    port = free_port()
    async with serving(redis_server.url, tmp_path, diameter_port=port, diameter_peers=allowed()) as client:
        await client.account(SUBSCRIBER, balance=1_000_000)

        def exchange(peer):
            redis_server.stop()
            request = peer.ccr(session_id(), INITIAL, 0, subscription=(E164, SUBSCRIBER))
            request.service_information = call_to(f"tel:{LONDON}")
            request.multiple_services_credit_control = [mscc(100, requested=ask(60))]
            return peer.send(request, timeout_s=30)

        answer = await in_thread(port, exchange)
        assert (answer.result_code, answer.header.is_error) == (3004, True)
        assert {item.result_code for item in answer.multiple_services_credit_control} == {3004}


async def test_a_malformed_avp_from_the_node_gets_failed_avp_and_the_session_goes_on(gateway):
    await gateway.account(SUBSCRIBER, balance=1_000_000)
    sid = session_id()

    def exchange(peer):
        bad = peer.ccr(sid, INITIAL, 0, subscription=(E164, SUBSCRIBER))
        bad.service_information = call_to(f"tel:{LONDON}")
        bad.multiple_services_credit_control = [mscc(100, requested=ask(60))]
        bad.event_timestamp = None
        bad.append_avp(Avp(c.AVP_EVENT_TIMESTAMP, 0, b"\x01\x02", 0x40))  # a Time of 2 bytes
        refused = peer.send(bad)
        good = peer.ccr(sid, INITIAL, 0, subscription=(E164, SUBSCRIBER))
        good.service_information = call_to(f"tel:{LONDON}")
        good.multiple_services_credit_control = [mscc(100, requested=ask(60))]
        return refused, peer.send(good)

    refused, accepted = await in_thread(gateway.port, exchange)
    assert refused.result_code == 5004
    [failed] = refused.failed_avp
    assert [avp.code for avp in failed.additional_avps] == [c.AVP_EVENT_TIMESTAMP]
    assert accepted.result_code == 2001  # the refused request left nothing behind: the same session starts

"""Edge cases found by an adversarial review of the online core; each test failed before its fix.

Service switches on a rating group, requests without quota items, int64 and usage-limit holes, repeats of refused
requests, usage on the terminate after an abort, and account ids that could alias another account's keys.

Amounts from examples/tariff at Monday 09:00 UTC (PEAK → STANDARD): cost(u) = 0.20 connect + 0.10 for the first
60 s step + 0.05/60 per second after, each run rounded up once: cost(60) = 300000, cost(600) = 750000. Data is
2.00 per MiB in 1 KiB increments (600 octets bill as 1 KiB: 1954). A message is 0.05.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from online_app import LONDON, MONDAY_PEAK, session, voice

from occ.api import wire
from occ.core.errors import InvalidRequest
from occ.core.requests import BalanceOutcome, Kind
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

TEN_EUR = 10_000_000
INT64_MAX = 2**63 - 1


def data(requested: int = 0, used: int = 0, rating_group: int = 100) -> pb.QuotaRequest:
    return pb.QuotaRequest(rating_group=rating_group, service=pb.DATA, requested_units=requested, used_units=used)


async def top_up(client, account_id: str, amount: int, key: str) -> None:
    await client.admin.Transact(
        admin.TransactionRequest(
            account_id=account_id, type=admin.TOP_UP, amount_micros=amount, idempotency_key=key, ledger_code=400000009
        )
    )


async def same_batch(client, *works):
    """Submit works to the frontend's batcher in one tick, so they are processed as one batch (as concurrent gRPC
    calls from several switches are)."""
    return await asyncio.gather(*(client.app.batcher.submit(work) for work in works), return_exceptions=True)


# -- 1. Money created by switching a rating group's service -----------------------------------------------------


async def test_changing_a_rating_groups_service_must_not_lower_its_committed_cost(charging):
    # Cost is priced on cumulative usage and never decreases (session.lua header: rg:<n>:cost = cost(rg:<n>:used)).
    # A rating group's service fixes its unit (proto: "Service fixes the unit"), so a later request naming the same
    # rating group with another service must be refused (INVALID_ARGUMENT or a per-item failure), never re-price the
    # voice seconds already charged as data octets. Today the 600 s of voice (0.75) are re-priced as 600 octets
    # of data (0.001954) and the difference, 0.748046, is CREDITED to the balance with a positive session_charge.
    await charging.account("svc", balance=TEN_EUR)
    await charging.charging.StartSession(session("sv1", 0, "svc", voice(requested=60)))
    await charging.charging.UpdateSession(session("sv1", 1, "svc", voice(used=600)))
    assert (await charging.balance("svc")).balance_micros == TEN_EUR - 750_000

    try:
        answer = await charging.charging.UpdateSession(session("sv1", 2, "svc", data(used=0)))
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        assert answer.quotas[0].cost_micros >= 750_000  # the session's cost never goes down
    assert (await charging.balance("svc")).balance_micros == TEN_EUR - 750_000
    assert all(int(e["amount"]) <= 0 for e in await charging.events("svc") if e["type"] == "session_charge")


# -- 2. Updates and terminates without quota items --------------------------------------------------------------


async def test_end_without_quota_items_closes_the_session_and_releases_its_hold(charging):
    # A CCR-TERMINATE with no usage to report (no Multiple-Services-Credit-Control) is valid and wire.py accepts it
    # (only a start needs a quota item). It must close the session and refund the unused reservation (RFC 8506:
    # OPEN → TERMINATE → IDLE, "refund the unused reservation"). Today the engine builds no rating row for it and
    # crashes (TypeError in Engine._rate on empty arrays): the switch gets gRPC UNKNOWN, the session stays OPEN and
    # the 0.30 hold stays reserved until the sweeper.
    await charging.account("nq", balance=TEN_EUR)
    await charging.charging.StartSession(session("nq1", 0, "nq", voice(requested=60)))
    end = await charging.charging.EndSession(session("nq1", 1, "nq"))
    assert end.result_code == pb.SUCCESS
    balance = await charging.balance("nq")
    assert (balance.balance_micros, balance.reserved_micros) == (TEN_EUR, 0)


async def test_update_without_quota_items_is_answered(charging):
    # Same root cause: a keep-alive CCR-UPDATE without quota items must be answered (and restart Tcc), not fail with
    # gRPC UNKNOWN.
    await charging.account("nu", balance=TEN_EUR)
    await charging.charging.StartSession(session("nu1", 0, "nu", voice(requested=60)))
    update = await charging.charging.UpdateSession(session("nu1", 1, "nu"))
    assert update.result_code == pb.SUCCESS


async def test_a_quota_less_end_does_not_fail_other_accounts_requests_in_its_batch(charging):
    # Bad luck of one request must stay with that request (batcher.py: "an exception instance for an item that
    # failed on its own"). Today the whole batch raises, so another account's GetBalance batched with it fails too.
    await charging.account("nq2", balance=TEN_EUR)
    await charging.account("bystander", balance=TEN_EUR)
    await charging.charging.StartSession(session("nq2-1", 0, "nq2", voice(requested=60)))
    end = wire.session_work(Kind.END, session("nq2-1", 1, "nq2"), "44")
    balance = wire.balance_work(pb.BalanceRequest(subscriber="bystander"))
    _, other = await same_batch(charging, end, balance)
    assert isinstance(other, BalanceOutcome) and other.balance_micros == TEN_EUR


# -- 3. int64 / usage-limit holes in validated input ------------------------------------------------------------


async def test_huge_used_units_are_refused_at_the_edge(charging):
    # used_units was validated only as "not negative": 30 s already reported + INT64_MAX − 10 overflowed int64 when
    # the engine built the cumulative usage, and the exception failed the whole batch, including another account's
    # request. Units are now bounded (10^12) where they arrive, so such a request is refused alone, naming the field.
    await charging.account("big", balance=TEN_EUR)
    await charging.charging.StartSession(session("big1", 0, "big", voice(requested=60)))
    with pytest.raises(InvalidRequest, match=r"quotas\[0\]\.used_units"):
        wire.session_work(Kind.UPDATE, session("big1", 2, "big", voice(requested=60, used=INT64_MAX - 10)), "44")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await charging.charging.UpdateSession(session("big1", 1, "big", voice(requested=60, used=INT64_MAX - 10)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await charging.balance("big")).reserved_micros == 300_000  # untouched


async def test_authorize_with_an_int64_max_cap_is_not_an_unlimited_free_call(charging):
    # max_units is "a cap on the answer"; INT64_MAX is a natural "no cap". The answer must still be the longest call
    # the credit covers: 10.00 buys 11700 s for exactly 10.00 (as max_units=0 answers). Today affordable_units'
    # candidate arithmetic (span × j) overflows int64 and the answer is SUCCESS, max_units = 2^58 s, cost 0: a
    # switch using it as the dialog timeout lets the call run unbounded.
    await charging.account("auth", balance=TEN_EUR)
    request = pb.AuthorizeRequest(subscriber="auth", service=pb.VOICE, called_party=LONDON, max_units=INT64_MAX)
    request.event_time.seconds = MONDAY_PEAK
    answer = await charging.charging.Authorize(request)
    assert (answer.result_code, answer.max_units, answer.cost_micros) == (pb.SUCCESS, 11_700, TEN_EUR)


async def test_requested_units_above_the_usage_limit_are_not_credit_limit_reached(charging):
    # A voice request for more than the rating limit (10^7 s) with 10.00 of credit: every ladder candidate above the
    # limit fails rating, breakpoints() drops the WHOLE ladder when any candidate fails, and no exact search runs, so
    # the start is refused with 4012 "not enough credit" although credit covers 11700 s. Expected: the grant the
    # credit covers (with a final-unit indication), or INVALID_ARGUMENT naming requested_units, never 4012.
    await charging.account("req", balance=TEN_EUR)
    try:
        start = await charging.charging.StartSession(session("rq1", 0, "req", voice(requested=2 * 10**7)))
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        return
    assert start.result_code != pb.CREDIT_LIMIT_REACHED
    assert (start.result_code, start.quotas[0].granted_units) == (pb.SUCCESS, 11_700)


async def test_an_int64_max_credit_limit_is_refused_or_works(charging):
    # credit_limit_micros has no upper bound (only ≥ 0); INT64_MAX is the natural "unlimited" postpaid limit. With any
    # positive balance, available = balance + limit exceeds int64: the engine's np.int64 credit array overflows and
    # every start on the account (and its whole batch) fails with gRPC UNKNOWN; session.lua computes available in
    # doubles (inexact above 2^53, which docs/architecture.md says the admin API enforces). Expected: CreateAccount /
    # UpdateAccount refuse a limit above 2^53 − 1 with INVALID_ARGUMENT, or charging keeps working.
    await charging.account("post", balance=TEN_EUR)
    try:
        await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="post", credit_limit_micros=INT64_MAX))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            return  # refused: fine
        # Today: UNKNOWN ("Value out of range" rendering available_micros), yet the limit WAS written (admin.py
        # writes first, then reads the account back), so the account is now broken. Go on to show it.
    start = await charging.charging.StartSession(session("po1", 0, "post", voice(requested=60)))
    assert start.result_code == pb.SUCCESS


# -- 4. Duplicates of failed requests ---------------------------------------------------------------------------


async def test_a_repeated_failed_start_replays_the_failure(charging):
    # (Session-Id, CC-Request-Number) is the duplicate key: "store each answer and replay it" (RFC 8506 §5.1, T-flag
    # retransmissions). A CCR-INITIAL refused with 4012 is not stored (session.lua DELs the session), so a duplicate
    # arriving after a top-up opens a session the client already gave up on: it reserves 0.30 that nothing will
    # release until the sweeper, and the repeat is answered differently from the original.
    await charging.account("fs", balance=0)
    first = await charging.charging.StartSession(session("fs1", 0, "fs", voice(requested=60)))
    assert first.result_code == pb.CREDIT_LIMIT_REACHED
    await top_up(charging, "fs", TEN_EUR, "later")
    again = await charging.charging.StartSession(session("fs1", 0, "fs", voice(requested=60)))
    assert again.result_code == first.result_code
    assert (await charging.balance("fs")).reserved_micros == 0


async def test_a_repeated_failed_debit_replays_the_failure_and_charges_nothing(charging):
    # The proto: "(session_id, request_number) identifies a request: a repeated one gets the stored answer and charges
    # nothing". A DIRECT_DEBIT refused with 4012 (the SMS was not sent) is not stored by event.lua; its duplicate after
    # a top-up DEBITS 0.05 for a service the client was told it could not have.
    await charging.account("fe", balance=0)
    event = pb.EventRequest(
        session_id="sms-9", subscriber="fe", action=pb.DIRECT_DEBIT, service=pb.MESSAGE, units=1, called_party=LONDON
    )
    event.event_time.seconds = MONDAY_PEAK
    first = await charging.charging.ChargeEvent(event)
    assert first.result_code == pb.CREDIT_LIMIT_REACHED
    await top_up(charging, "fe", TEN_EUR, "later")
    again = await charging.charging.ChargeEvent(event)
    assert again.result_code == first.result_code
    assert (await charging.balance("fe")).balance_micros == TEN_EUR


# -- 5. Lost charge after an administrator abort ----------------------------------------------------------------


async def test_usage_reported_on_the_terminate_after_an_abort_is_charged(charging):
    # An abort (ASR) asks the client to end the session; per RFC 8506 the client then sends its CCR-TERMINATE with the
    # units it used, and the server debits them. The proto says the abort "commits its usage". Here AbortSession
    # closes the session at once (releasing the 0.30 hold for the 60 s granted), so the terminate that follows gets
    # 5002 and the 60 s the subscriber really used under a valid grant are never charged.
    await charging.account("ab", balance=TEN_EUR)
    await charging.charging.StartSession(session("ab1", 0, "ab", voice(requested=60)))
    aborted = await charging.admin.AbortSession(admin.AbortSessionRequest(account_id="ab", session_id="ab1"))
    assert aborted.aborted
    end = await charging.charging.EndSession(session("ab1", 1, "ab", voice(used=60)))
    assert end.result_code == pb.SUCCESS
    assert (await charging.balance("ab")).balance_micros == TEN_EUR - 300_000


# -- 6. Account ids that alias another account's keys ----------------------------------------------------------


async def test_an_account_id_cannot_alias_another_accounts_session_set(charging):
    # Account ids are any printable string, and an account's own keys are the account key plus a suffix
    # (":sessions", ":txn", ":evt:<id>"). "u275" and "u275:sessions" hash to the same shard (crc32 % 256 = 91), so
    # the second account's hash IS the first account's open-session set. Every start of u275 then hits WRONGTYPE in
    # the middle of session.lua: the whole script call fails (the bystander's start in the same batch is applied but
    # answered with an error) and u275's session is left half-written (OPEN, hold set, account reserved not raised).
    # Expected: such an id is refused with INVALID_ARGUMENT, or both accounts work independently.
    await charging.account("u275", balance=TEN_EUR)
    await charging.account("bystander", balance=TEN_EUR)
    try:
        await charging.admin.CreateAccount(admin.Account(id="u275:sessions", currency="EUR", tariff_plan="retail"))
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        return
    victim = wire.session_work(Kind.START, session("al1", 0, "u275", voice(requested=60)), "44")
    other = wire.session_work(Kind.START, session("al2", 0, "bystander", voice(requested=60)), "44")
    results = await same_batch(charging, other, victim)
    assert not any(isinstance(result, Exception) for result in results)
    assert (await charging.balance("u275")).reserved_micros == 300_000


async def test_a_repeated_start_refused_for_a_blocked_account_stays_refused(charging):
    # Refusals are stored like any answer: unblocking the account does not turn a retransmitted CCR-I into a session.
    await charging.account("blk", balance=TEN_EUR)
    await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="blk", status=admin.BLOCKED))
    first = await charging.charging.StartSession(session("b1", 0, "blk", voice(requested=60)))
    assert first.result_code == pb.END_USER_SERVICE_DENIED
    await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="blk", status=admin.ACTIVE))
    assert await charging.charging.StartSession(session("b1", 0, "blk", voice(requested=60))) == first
    assert (await charging.balance("blk")).reserved_micros == 0
    fresh = await charging.charging.StartSession(session("b2", 0, "blk", voice(requested=60)))
    assert fresh.result_code == pb.SUCCESS


async def test_a_repeated_debit_refused_for_a_blocked_account_charges_nothing(charging):
    await charging.account("blk2", balance=TEN_EUR)
    await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="blk2", status=admin.BLOCKED))
    event = pb.EventRequest(
        session_id="sms-b", subscriber="blk2", action=pb.DIRECT_DEBIT, service=pb.MESSAGE, units=1, called_party=LONDON
    )
    first = await charging.charging.ChargeEvent(event)
    assert first.result_code == pb.END_USER_SERVICE_DENIED
    await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="blk2", status=admin.ACTIVE))
    assert (await charging.charging.ChargeEvent(event)).result_code == pb.END_USER_SERVICE_DENIED
    assert (await charging.balance("blk2")).balance_micros == TEN_EUR

"""Aborts, notices, money limits and tariff currency, found by a second adversarial review (each test failed before its
fix), and a randomized run of mixed operations checking the stream and reservation invariants of docs/events.md.

Amounts from examples/tariff at Monday 09:00 UTC (PEAK → STANDARD): cost(60 s) = 0.30, cost(61 s) = 0.300834.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import time

import grpc
import pytest
from online_app import EXAMPLE_TARIFF, LONDON, MONDAY_PEAK, serving, session, voice

from occ.store import keys
from occ.store.keys import shard_of
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

TEN_EUR = 10_000_000
MAX_AMOUNT = 2**53 - 1
READ_TIMEOUT_S = 5


def transaction(account_id: str, kind: int, amount: int, key: str) -> admin.TransactionRequest:
    return admin.TransactionRequest(
        account_id=account_id, type=kind, amount_micros=amount, idempotency_key=key, ledger_code=400000009
    )


async def read(call) -> pb.StreamAnswer:
    answer = await asyncio.wait_for(call.read(), READ_TIMEOUT_S)
    assert answer is not grpc.aio.EOF, "the stream ended"
    return answer


async def listening_for_notices(client) -> None:
    for _ in range(150):
        [(_, subscribers)] = await client.app.redis.pubsub_numsub(keys.NOTICE_CHANNEL)
        if subscribers:
            return
        await asyncio.sleep(0.02)


def check_replay(entries: list[dict[str, str]], live_balance: int) -> None:
    """docs/events.md: balance(after n) = balance(after n-1) + amount(n), from 0; the last equals the live balance."""
    balance = 0
    for entry in entries:
        assert "e" not in entry["amount"].lower() and "e" not in entry["balance"].lower(), entry
        balance += int(entry["amount"])
        assert int(entry["balance"]) == balance, entry
        assert abs(balance) < 2**53, entry  # "always below 2^53 in size"
    assert balance == live_balance


# -- 1. Transactions can push a balance past 2^53: Lua doubles lose micro-units and the stream lies ------------------


async def test_transactions_never_take_the_balance_beyond_exact_doubles(charging):
    # docs/events.md: money "always below 2^53 in size" and replaying an account's entries reproduces its balance.
    # admin.py bounds each transaction amount (|amount| ≤ 2^53 − 1) but not the balance it produces, and
    # transaction.lua adds them as doubles: two top-ups of 2^53 − 1 and one of 1 micro-unit give a balance that is not
    # the sum (2^54 − 1 is not a double), so entry 3's balance ≠ entry 2's balance + its amount. Expected: a
    # transaction whose resulting balance would reach 2^53 in size is refused (FAILED_PRECONDITION / INVALID_ARGUMENT)
    # and changes nothing; whatever is accepted replays exactly.
    await charging.account("rich", balance=0)
    for n, amount in enumerate((MAX_AMOUNT, MAX_AMOUNT, 1)):
        try:
            await charging.admin.Transact(transaction("rich", admin.TOP_UP, amount, f"k{n}"))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)
    live = (await charging.admin.GetAccount(admin.GetAccountRequest(id="rich"))).balance_micros
    check_replay(await charging.events("rich"), live)


# -- 2. Usage under a grant given before an abort is reported as overuse -----------------------------------------


async def test_usage_within_the_grant_reported_after_an_abort_is_not_overuse(charging):
    # QuotaAnswer.overused_units / session_close `over` are "usage reported beyond what was granted" (RFC 8506 §8.19).
    # The switch was granted 60 s before the administrator's abort and used exactly 60 s; the terminate that follows
    # the abort reports them. That usage was granted: over must be 0. Today the abort zeroes rg:<n>:granted along
    # with the hold (session.lua release_holds), so all 60 s are counted as overuse on the answer and on the xDR.
    await charging.account("ov", balance=TEN_EUR)
    await charging.charging.StartSession(session("ov1", 0, "ov", voice(requested=60)))
    assert (await charging.admin.AbortSession(admin.AbortSessionRequest(account_id="ov", session_id="ov1"))).aborted
    end = await charging.charging.EndSession(session("ov1", 1, "ov", voice(used=60)))
    assert end.result_code == pb.SUCCESS and end.quotas[0].cost_micros == 300_000
    [close] = [e for e in await charging.events("ov") if e["type"] == "session_close"]
    assert close["cause"] == "ABORTED"
    assert (end.quotas[0].overused_units, close["over"]) == (0, "0")


# -- 3. Aborts never reach the switch on Redis Cluster -----------------------------------------------------------


async def test_an_abort_is_pushed_to_the_stream_on_either_backend(backend_charging):
    # admin.proto: "An abort releases the session's holds at once and tells the switch (on its Stream)"; README:
    # "pushed to the switch if it is on a Stream". On Redis Cluster admin.py publishes nothing and app.py starts no
    # notice listener, so even a switch whose Stream is on the very frontend that ran the abort is never told: it
    # keeps the call up until its grant runs out, and the session is only closed by the sweeper.
    client = backend_charging
    await client.account("cl", balance=TEN_EUR)
    await listening_for_notices(client)
    call = client.charging.Stream()
    await call.write(pb.StreamRequest(correlation_id=1, start=session("cl-1", 0, "cl", voice(60))))
    assert (await read(call)).session.result_code == pb.SUCCESS
    aborted = await client.admin.AbortSession(admin.AbortSessionRequest(account_id="cl", session_id="cl-1", reason="x"))
    assert aborted.aborted
    try:
        pushed = await read(call)
        assert pushed.WhichOneof("answer") == "abort" and pushed.abort.session_id == "cl-1"
    finally:
        call.cancel()


# -- 4. An abort is pushed to another account's switch when both use the same session id ---------------------------


def other_shard_than(account_id: str, shards: int) -> str:
    return next(f"v{n}" for n in itertools.count() if shard_of(f"v{n}", shards) != shard_of(account_id, shards))


async def test_an_abort_goes_to_the_switch_of_the_aborted_accounts_session(charging):
    # session.lua: "session ids are global: another account's session is not this one's" — but the session key lives
    # in the ACCOUNT's shard, so two accounts on different shards can both open session "dup-1" (both 2001). The
    # frontend's stream map and the notice channel are keyed by session id alone, so aborting alice's "dup-1" pushes
    # the abort to the stream that last carried any "dup-1": bob's switch (whose session is untouched) is told to
    # hang up, and alice's switch is never told. Expected: the second start is refused (the id is in use), or the
    # abort is pushed to alice's stream only.
    shards = charging.app.settings.shards
    bob = other_shard_than("alice", shards)
    await charging.account("alice", balance=TEN_EUR)
    await charging.account(bob, balance=TEN_EUR)
    await listening_for_notices(charging)
    alice_call, bob_call = charging.charging.Stream(), charging.charging.Stream()
    try:
        await alice_call.write(pb.StreamRequest(correlation_id=1, start=session("dup-1", 0, "alice", voice(60))))
        assert (await read(alice_call)).session.result_code == pb.SUCCESS
        await bob_call.write(pb.StreamRequest(correlation_id=2, start=session("dup-1", 0, bob, voice(60))))
        bob_start = await read(bob_call)
        if bob_start.WhichOneof("answer") == "error" or bob_start.session.result_code != pb.SUCCESS:
            return  # refused: the session id is taken, as session.lua's comment promises
        assert await charging.admin.AbortSession(admin.AbortSessionRequest(account_id="alice", session_id="dup-1"))
        try:
            wrong = await asyncio.wait_for(bob_call.read(), 1)
        except TimeoutError:
            wrong = None
        assert wrong is None, f"bob's switch was told to end his own call: {wrong}"
        pushed = await read(alice_call)
        assert pushed.WhichOneof("answer") == "abort" and pushed.abort.session_id == "dup-1"
    finally:
        alice_call.cancel()
        bob_call.cancel()


# -- 5. A tariff in another currency is loaded over accounts in the old one ---------------------------------------


async def test_a_tariff_in_another_currency_does_not_charge_existing_accounts_in_it(charging, tmp_path):
    # admin.proto: an account's currency "must match the tariff's currency" (CreateAccount enforces it). LoadTariff
    # accepts a tariff priced in USD while every account is in EUR; from then on EUR balances are debited USD amounts
    # and the stream's `currency` (the account's) mislabels them. Expected: LoadTariff refuses a tariff whose currency
    # differs from the current one (INVALID_ARGUMENT / FAILED_PRECONDITION), or charging refuses to price across
    # currencies; never a EUR debit of a USD price.
    await charging.account("eur", balance=TEN_EUR)
    dollars = tmp_path / "usd"
    shutil.copytree(EXAMPLE_TARIFF, dollars)
    meta = dollars / "tariff.csv"
    meta.write_text(meta.read_text().replace(",EUR,", ",USD,"))
    try:
        await charging.admin.LoadTariff(admin.LoadTariffRequest(directory=str(dollars)))
    except grpc.aio.AioRpcError as exc:
        assert exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
        return
    start = await charging.charging.StartSession(session("usd-1", 0, "eur", voice(requested=60)))
    # Today: SUCCESS, 0.30 USD held on a EUR balance (available 9.70 "EUR").
    assert start.result_code != pb.SUCCESS, f"a EUR account was granted at USD prices: {start}"


# -- 6. Re-auth requests are pushed for sessions that were aborted -------------------------------------------------


async def test_a_top_up_does_not_ask_an_aborted_session_to_come_back_for_credit(charging):
    # RFC 8506: after an abort (ASR) the client is to end the session; a Re-Auth-Request invites it to send an UPDATE
    # for more credit. admin.py publishes "reauth" for every member of the account's session set after a positive
    # transaction, and an ABORTING session is still in that set, so the switch that was just told to hang up is then
    # told to ask for more (which will be refused with 4010). Expected: no reauth for an ABORTING session.
    await charging.account("ra", balance=TEN_EUR)
    await listening_for_notices(charging)
    call = charging.charging.Stream()
    try:
        await call.write(pb.StreamRequest(correlation_id=1, start=session("ra-1", 0, "ra", voice(60))))
        assert (await read(call)).session.result_code == pb.SUCCESS
        await charging.admin.AbortSession(admin.AbortSessionRequest(account_id="ra", session_id="ra-1"))
        assert (await read(call)).WhichOneof("answer") == "abort"
        await charging.admin.Transact(transaction("ra", admin.TOP_UP, 1_000_000, "more"))
        try:
            notice = await asyncio.wait_for(call.read(), 1)
        except TimeoutError:
            notice = None
        assert notice is None, f"an aborted session was asked to come back for credit: {notice}"
    finally:
        call.cancel()


# -- 6b. An update after an abort is refused as "the account is blocked" ---------------------------------------------


async def test_an_update_after_an_abort_does_not_say_the_account_is_blocked(charging):
    # charging.proto: SessionAnswer.reason is "why a failed request failed, in words". After an administrator's abort
    # an update gets no grant (4010, admin.proto); the account itself is ACTIVE. engine._replay takes the reason
    # from the result code alone (_REASONS[4010] = "the account is blocked"), so the switch and its operator are told
    # the subscriber is blocked, which is false (and the quota item's reason is empty). Expected: a reason naming
    # the abort (e.g. "the session was aborted: <reason>"), never "the account is blocked" for an active account.
    await charging.account("ua", balance=TEN_EUR)
    await charging.charging.StartSession(session("ua-1", 0, "ua", voice(requested=60)))
    await charging.admin.AbortSession(admin.AbortSessionRequest(account_id="ua", session_id="ua-1", reason="fraud"))
    update = await charging.charging.UpdateSession(session("ua-1", 1, "ua", voice(requested=60, used=30)))
    assert update.result_code == pb.END_USER_SERVICE_DENIED
    account = await charging.admin.GetAccount(admin.GetAccountRequest(id="ua"))
    assert account.status == admin.ACTIVE
    assert "blocked" not in update.reason, update.reason


# -- 7. Property test (passes; kept for coverage): the event-stream and reservation invariants ------------------------

SATELLITE = "+881612345678"  # no voice rate on the retail plan: rating fails for that rating group


def data(requested: int = 0, used: int = 0, rating_group: int = 200) -> pb.QuotaRequest:
    return pb.QuotaRequest(rating_group=rating_group, service=pb.DATA, requested_units=requested, used_units=used)


@pytest.mark.parametrize("seed", [2026, 3])
async def test_random_operations_keep_the_stream_and_reservation_invariants(redis_url, tmp_path, seed):
    # docs/events.md: per account, replaying entries in stream order reproduces the balance from 0; Σ session_charge
    # amounts of a (session, rating group) == −cost of its session_close; session.lua: account.reserved = Σ holds of
    # its open sessions, and no grant takes available below zero; a repeated request gets the same answer and changes
    # nothing. Two frontends on one Redis, a random mix of starts (some with an unrateable rating group), updates with
    # overuse, ends, aborts, repeats, blocks, plan changes, top-ups, adjustments of either sign, refunds, one-shot
    # debits and refunds, then a sweep that closes what is left.
    rng = random.Random(seed)
    accounts = ["pa", "pb", "pc"]
    async with serving(redis_url, tmp_path / "a") as one, serving(redis_url, tmp_path / "b") as two:
        fronts = [one, two]
        for account_id in accounts:
            await one.account(
                account_id, balance=rng.choice([0, 400_000, 2_000_000]), credit_limit=rng.choice([0, 300_000])
            )
        live: dict[str, tuple[str, int, list[int]]] = {}  # session → (account, next request number, rating groups)
        last: dict[str, tuple[str, pb.SessionRequest, pb.SessionAnswer]] = {}
        counter = itertools.count()

        async def rpc(kind: str, request: pb.SessionRequest) -> pb.SessionAnswer:
            stub = rng.choice(fronts).charging
            method = {"start": stub.StartSession, "update": stub.UpdateSession, "end": stub.EndSession}[kind]
            answer = await method(request)
            assert answer.result_code != pb.TOO_BUSY
            last[request.session_id] = (kind, request, answer)
            return answer

        for _ in range(150):
            op = rng.choices(
                ["start", "update", "end", "abort", "repeat", "money", "event", "block", "plan"],
                weights=[6, 8, 2, 2, 3, 3, 3, 1, 1],
            )[0]
            account_id = rng.choice(accounts)
            client = rng.choice(fronts)
            if op == "start":
                sid = f"s{next(counter)}"
                quotas = [voice(requested=rng.choice([30, 60, 600]))]
                called = rng.choice([LONDON, LONDON, SATELLITE])
                if rng.random() < 0.4:
                    quotas.append(data(requested=rng.choice([1024, 10**6])))
                answer = await rpc("start", session(sid, 0, account_id, *quotas, called=called))
                if answer.result_code == pb.SUCCESS:
                    live[sid] = (account_id, 1, [q.rating_group for q in quotas])
            elif op in ("update", "end") and live:
                sid = rng.choice(sorted(live))
                owner, number, groups = live[sid]
                quotas = []
                for rg in groups:
                    used = rng.choice([0, 10, 60, 200])  # 200 s: beyond a 60 s grant, charged as overuse
                    asked = 0 if op == "end" else rng.choice([0, 60])
                    quotas.append(voice(asked, used) if rg == 100 else data(asked, used * 1000, rg))
                answer = await rpc(op, session(sid, number, owner, *quotas))
                if op == "end" or answer.result_code == pb.UNKNOWN_SESSION_ID:
                    live.pop(sid, None)
                else:
                    live[sid] = (owner, number + 1, groups)
            elif op == "abort" and live:
                sid = rng.choice(sorted(live))
                await client.admin.AbortSession(admin.AbortSessionRequest(account_id=live[sid][0], session_id=sid))
            elif op == "repeat" and last:
                sid = rng.choice(sorted(last))
                kind, request, first = last[sid]
                before = await one.balance(request.subscriber)
                stub = rng.choice(fronts).charging
                method = {"start": stub.StartSession, "update": stub.UpdateSession, "end": stub.EndSession}[kind]
                assert await method(request) == first
                after = await one.balance(request.subscriber)
                assert (after.balance_micros, after.reserved_micros) == (before.balance_micros, before.reserved_micros)
            elif op == "money":
                kind = rng.choice([admin.TOP_UP, admin.PAYMENT, admin.ADJUSTMENT, admin.REFUND])
                amount = rng.choice([100_000, 500_000])
                if kind == admin.ADJUSTMENT and rng.random() < 0.5:
                    amount = -amount
                key = f"t{next(counter)}"
                request = transaction(account_id, kind, amount, key)
                first = await client.admin.Transact(request)
                again = await rng.choice(fronts).admin.Transact(request)
                assert (again.transaction_id, again.balance_micros, again.duplicate) == (
                    first.transaction_id, first.balance_micros, True)  # fmt: skip
            elif op == "event":
                action = rng.choice([pb.DIRECT_DEBIT, pb.DIRECT_DEBIT, pb.REFUND_ACCOUNT])
                event = pb.EventRequest(session_id=f"e{next(counter)}", subscriber=account_id, action=action,
                                        service=pb.MESSAGE, units=rng.choice([1, 5]), called_party=LONDON)  # fmt: skip
                event.event_time.seconds = MONDAY_PEAK
                first = await client.charging.ChargeEvent(event)
                assert await rng.choice(fronts).charging.ChargeEvent(event) == first
            elif op == "block":
                status = rng.choice([admin.ACTIVE, admin.ACTIVE, admin.BLOCKED])
                await client.admin.UpdateAccount(admin.UpdateAccountRequest(id=account_id, status=status))
            elif op == "plan":
                plan = rng.choice(["retail", "retail", "wholesale"])
                await client.admin.UpdateAccount(admin.UpdateAccountRequest(id=account_id, tariff_plan=plan))
            await check_reservations(one, accounts)

        await one.app.sweeper.sweep_once(int(time.time() * 1000) + 10**9)
        await check_reservations(one, accounts)
        seen: set[str] = set()
        for account_id in accounts:
            account = await one.admin.GetAccount(admin.GetAccountRequest(id=account_id))
            assert (account.reserved_micros, account.open_sessions) == (0, 0)
            entries = await one.events(account_id)
            check_replay([e for e in entries if e["type"] != "session_close"], account.balance_micros)
            charges: dict[tuple[str, str], int] = {}
            for entry in entries:
                if entry["type"] == "session_charge":
                    key = (entry["session_id"], entry["rg"])
                    charges[key] = charges.get(key, 0) + int(entry["amount"])
            closes = {(e["session_id"], e["rg"]): e for e in entries if e["type"] == "session_close"}
            seen |= {e["type"] for e in entries} | {e["cause"] for e in closes.values()}
            seen |= {"over" for e in closes.values() if e["over"] != "0"}
            assert set(charges) <= set(closes)
            for key, close in closes.items():
                assert charges.get(key, 0) == -int(close["cost"]), (key, close)
                assert close["amount"] == "0"
        assert {"ABORTED", "TERMINATE", "TIMEOUT", "over", "event_charge", "event_refund", "refund"} <= seen


async def check_reservations(client, accounts: list[str]) -> None:
    store = client.app.store
    for account_id in accounts:
        fields = await store.read_account(account_id)
        holds = sum(session["held"] for session in await store.open_sessions(account_id))
        assert int(fields["reserved"]) == holds >= 0, (account_id, fields, holds)

"""The hot path for a batch of validated requests.

    read (one round trip: read.lua) → vectorised rating per tariff version → apply (one round trip per script:
    session.lua, event.lua) → outcomes

The read gives each request its account, session and stored answer; a stored answer is replayed at once. Rating
uses the account's plan and the current tariff for a start, and the session's plan, destination, start time and
tariff version for updates and ends, so a session is priced on its cumulative usage with one tariff throughout. The
scripts re-check what rating relied on (plan, session version) and answer "retry" when it moved; such requests go
round again, at most ``MAX_ATTEMPTS`` times, then get TOO_BUSY.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from typing import Any

import numpy as np

from occ.core.requests import (
    Action,
    AuthorizeOutcome,
    BalanceOutcome,
    Code,
    EventOutcome,
    InvalidRequest,
    Kind,
    Outcome,
    QuotaOutcome,
    SessionOutcome,
    Work,
)
from occ.core.tariffs import TariffHolder
from occ.store.scripts import KeyedRequest, Store
from rating_engine import Call, CallBatch, Service, affordable_units, breakpoints
from rating_engine.tariff import MAX_USAGE, MAX_VOICE_SECONDS

MAX_ATTEMPTS = 3
MAX_KNOWN_ACCOUNTS = 100_000
NOT_READ = 2**62
"""Credit of an account that was not read: large enough that rating never searches for a smaller grant."""
LADDER_POINTS = 8
AUTHORIZE_CAP = {Service.VOICE: 4 * 3600, Service.DATA: 10 * 2**30, Service.MESSAGE: 100}
SESSION_KINDS = (Kind.START, Kind.UPDATE, Kind.END)
LIVE_STATES = ("OPEN", "ABORTING")  # ABORTING: aborted by an administrator, waiting for the switch's terminate
USAGE_LIMIT = {Service.VOICE: MAX_VOICE_SECONDS, Service.DATA: MAX_USAGE, Service.MESSAGE: MAX_USAGE}


class _Account:
    __slots__ = ("available", "balance", "currency", "limit", "plan", "reserved", "status")

    def __init__(self, fields: list) -> None:
        self.balance, self.limit, self.reserved = (int(f or 0) for f in fields[:3])
        self.status, self.plan, self.currency = fields[3] or "", fields[4] or "", fields[5] or ""
        self.available = self.balance + self.limit - self.reserved

    @classmethod
    def missing(cls) -> _Account:
        """Stands in for an account that does not exist (its start is refused by the script)."""
        return cls([0, 0, 0, "", "", ""])

    @classmethod
    def assumed(cls, plan: str, currency: str) -> _Account:
        """An account known from earlier requests but not read now: its credit is left to the script."""
        account = cls([0, 0, 0, "ACTIVE", plan, currency])
        account.available = NOT_READ
        return account


class _Row:
    """One thing to rate: a quota item of a session request, an event, or an authorization.

    ``call.usage`` is the session's cumulative usage including what is reported now."""

    __slots__ = ("back", "call", "credit", "position", "quota", "requested")

    def __init__(self, position: int, quota: int, call: Call, requested: int, credit: int, back: int = 0) -> None:
        self.position, self.quota, self.call, self.requested, self.credit = position, quota, call, requested, credit
        self.back = back  # what applying this item gives back first: its old hold and its committed cost


class Engine:
    """Processes batches of ``Work`` into outcomes (or exceptions, per request)."""

    def __init__(self, store: Store, tariffs: TariffHolder, *, validity_time_s: int) -> None:
        self.store, self.tariffs, self.validity_time_s = store, tariffs, validity_time_s
        self._known: dict[str, tuple[str, str]] = {}  # account → (plan, currency), from earlier reads

    async def process(self, works: list[Work]) -> list[Outcome | Exception]:
        results: list[Any] = [None] * len(works)
        attempts = [0] * len(works)
        pending, first_round = list(range(len(works))), True
        while pending:
            # One request per session and round, lowest request number first: requests of one session would only
            # make each other retry (each moves the session's version); the others wait for the next round.
            now, later = _one_per_session(works, pending)
            retry = await self._attempt(works, now, results, unread_starts=first_round)
            first_round = False
            for position in retry:
                attempts[position] += 1
            busy = [position for position in retry if attempts[position] >= MAX_ATTEMPTS]
            for position in busy:
                results[position] = _failed(works[position], Code.TOO_BUSY, "the account changed during the request")
            pending = later + [position for position in retry if attempts[position] < MAX_ATTEMPTS]
        return [RuntimeError("no outcome for this request") if result is None else result for result in results]

    async def _attempt(self, works: list[Work], pending: list[int], results: list, *, unread_starts: bool) -> list[int]:
        rows: dict[str, list[_Row]] = defaultdict(list)  # by tariff hash
        quota_less: list[tuple[int, KeyedRequest]] = []
        accounts: dict[int, _Account] = {}
        sessions: dict[int, list] = {}
        # A start on a known account skips the read: it is rated with the account's plan as last seen, and
        # session.lua checks that plan, answers a repeat, and says "short" when the credit may not cover it all.
        unread = {
            position
            for position in pending
            if unread_starts and works[position].kind is Kind.START and works[position].subscriber in self._known
        }
        for position in unread:
            work = works[position]
            accounts[position] = account = _Account.assumed(*self._known[work.subscriber])
            rows[self.tariffs.current.hash].extend(self._rows(position, work, account, None, []))
        read = [position for position in pending if position not in unread]
        replies = await self.store.run_batch("read", [self._read_request(works[i]) for i in read])
        for position, reply in zip(read, replies, strict=True):
            if isinstance(reply, Exception):  # its shard group's script failed: this request fails, not the batch
                results[position] = reply
                continue
            account_fields, session, rgs, stored = reply
            work = works[position]
            account = _Account(account_fields) if account_fields else None
            currency = account.currency if account else ""
            if account is not None:
                self._remember(work.subscriber, account)
            if stored:
                results[position] = _replay(work, stored, currency)
            elif work.kind in (Kind.UPDATE, Kind.END) and (not session or session[0] not in LIVE_STATES):
                results[position] = _failed(work, Code.UNKNOWN_SESSION_ID, "no open session with this id")
            elif work.kind is Kind.START and (account is None or account.status != "ACTIVE"):
                # Refused (5030, 4010) by session.lua, which stores the refusal so that a repeat gets it again.
                accounts[position] = account = account or _Account.missing()
                refusal = self._session_request(work, [], account, None, self.tariffs.current.hash)
                quota_less.append((position, refusal))
            elif account is None:
                results[position] = _failed(work, Code.USER_UNKNOWN, "no account with this subscriber id")
            elif work.kind is Kind.BALANCE:
                results[position] = BalanceOutcome(
                    Code.SUCCESS, account.balance, account.limit, account.reserved, account.available, currency
                )
            elif account.status != "ACTIVE" and (
                work.kind is Kind.AUTHORIZE or work.action in (Action.CHECK_BALANCE, Action.PRICE_ENQUIRY)
            ):  # read-only requests: nothing to store (a blocked direct debit goes on to event.lua, which stores it)
                results[position] = _failed(work, Code.END_USER_SERVICE_DENIED, "the account is blocked", account)
            else:
                mismatch = _service_changed(work, rgs)
                if mismatch is not None:
                    results[position] = mismatch
                    continue
                accounts[position] = account
                if session:
                    sessions[position] = session
                tariff_hash = session[5] if session else self.tariffs.current.hash
                if work.quotas or work.kind not in SESSION_KINDS:
                    rows[tariff_hash].extend(self._rows(position, work, account, session, rgs))
                else:  # an update or end with nothing to report or ask: no rating, just the session step
                    quota_less.append((position, self._session_request(work, [], account, session, tariff_hash)))

        session_requests: list[tuple[int, KeyedRequest]] = quota_less
        event_requests: list[tuple[int, KeyedRequest]] = []
        for tariff_hash, tariff_rows in rows.items():
            for position, items in await self._rate(tariff_hash, tariff_rows, works):
                work, account = works[position], accounts[position]
                if isinstance(items, Exception):
                    results[position] = items
                elif work.kind is Kind.AUTHORIZE:
                    results[position] = _authorized(items[0], account)
                elif work.kind is Kind.EVENT:
                    outcome = _event_without_apply(work, items[0], account)
                    if outcome is not None:
                        results[position] = outcome
                    else:
                        event_requests.append((position, self._event_request(work, items[0], account, tariff_hash)))
                else:
                    request = self._session_request(work, items, account, sessions.get(position), tariff_hash)
                    request.payload["probe"] = position in unread
                    session_requests.append((position, request))

        session_replies, event_replies = await asyncio.gather(
            self.store.run_batch("session", [request for _, request in session_requests]),
            self.store.run_batch("event", [request for _, request in event_requests]),
        )
        retry = []
        for (position, _), reply in itertools.chain(
            zip(session_requests, session_replies, strict=True), zip(event_requests, event_replies, strict=True)
        ):
            if isinstance(reply, Exception):
                results[position] = reply
                continue
            outcome = reply[0]
            if outcome in ("retry", "short"):  # the plan moved, or the credit must be read: read and go round again
                retry.append(position)
            elif outcome == "gone":
                results[position] = _failed(works[position], Code.UNKNOWN_SESSION_ID, "no open session with this id")
            elif outcome == "exists":
                results[position] = InvalidRequest("session_id", "is already in use by another session")
            else:
                results[position] = _replay(works[position], reply[1], accounts[position].currency)
                if results[position].code == Code.USER_UNKNOWN:
                    self._known.pop(works[position].subscriber, None)
        return retry

    def _remember(self, account_id: str, account: _Account) -> None:
        if len(self._known) >= MAX_KNOWN_ACCOUNTS:
            self._known.clear()
        self._known[account_id] = (account.plan, account.currency)

    def _read_request(self, work: Work) -> KeyedRequest:
        keys = self.store.keys(work.subscriber)
        if work.kind in SESSION_KINDS:
            key_list = [keys.account, keys.session(work.session_id)]
        elif work.kind is Kind.EVENT:
            key_list = [keys.account, keys.event_answers(work.session_id)]
        else:
            key_list = [keys.account]
        rgs = [quota.rating_group for quota in work.quotas]
        payload = {"rn": work.request_number, "rgs": rgs, "acct": work.subscriber, "owned": work.kind in SESSION_KINDS}
        return KeyedRequest(keys.shard, key_list, payload)

    def _rows(self, position: int, work: Work, account: _Account, session: list | None, rgs: list) -> list[_Row]:
        if work.kind is Kind.AUTHORIZE:
            call = Call(account.plan, work.service, work.destination, work.event_time_s, 0)
            cap = min(work.units or AUTHORIZE_CAP[work.service], USAGE_LIMIT[work.service])
            return [_Row(position, 0, call, cap, account.available)]
        if work.kind is Kind.EVENT:
            call = Call(account.plan, work.service, work.destination, work.event_time_s, work.units)
            return [_Row(position, 0, call, 0, 0)]
        if work.kind is Kind.START:
            plan, destination, start_s = account.plan, work.destination, work.event_time_s
        else:
            plan, destination, start_s = session[2], session[3], int(session[4])
        rows = []
        for index, quota in enumerate(work.quotas):
            used_before, cost_before, hold = (int(value or 0) for value in rgs[index][:3]) if rgs else (0, 0, 0)
            used_total = used_before + quota.used
            # Nothing beyond the usage limit can be rated: ask for at most what is left below it.
            requested = (
                0 if work.kind is Kind.END else max(0, min(quota.requested, USAGE_LIMIT[quota.service] - used_total))
            )
            call = Call(plan, quota.service, destination, start_s, used_total)
            # Credit for the grant as of the read: the session's own hold on this rating group is given back first,
            # and the usage reported now is debited first (``_rate`` subtracts its cumulative cost).
            back = hold + cost_before
            rows.append(_Row(position, index, call, requested, account.available + back, back))
        return rows

    async def _rate(self, tariff_hash: str, rows: list[_Row], works: list[Work]) -> list[tuple[int, Any]]:
        """Rate rows of one tariff version; returns (position, list of rated items | exception) per request."""
        tariff = await self.tariffs.get(tariff_hash)
        batch = CallBatch.from_calls(tariff, [row.call for row in rows])
        used = batch.usage
        requested = np.array([row.requested for row in rows], dtype=np.int64)
        ladder = breakpoints(tariff, batch, used, requested, LADDER_POINTS)
        base = ladder.base
        credit = np.array([row.credit for row in rows], dtype=np.int64) - base.cost_micros
        top = ladder.cost_micros[:, 0] - base.cost_micros  # what granting all that is asked costs
        authorize = np.array([works[row.position].kind is Kind.AUTHORIZE for row in rows])
        extra = np.zeros(len(rows), dtype=np.int64)
        extra_cost = np.zeros(len(rows), dtype=np.int64)
        # session.lua grants a request's items in order, each from what the earlier ones left: so go item by item
        # (index 0 of every request, then index 1 …), taking from each request's credit what its earlier items take.
        taken: dict[int, int] = defaultdict(int)  # by request position
        indices = sorted({row.quota for row in rows})
        for index in indices:
            now = np.array([i for i, row in enumerate(rows) if row.quota == index])
            credit[now] -= [taken[rows[i].position] for i in now]
            # The exact largest grant is searched for only where the credit cannot cover the whole request (the
            # ladder's top), for authorizations, which answer with it, and where the ladder could not be rated whole.
            short = now[(requested[now] > 0) & ((top[now] > credit[now]) | authorize[now] | (ladder.failure[now] != 0))]
            if len(short):
                extra[short], extra_cost[short], _ = affordable_units(
                    tariff, batch.take(short), used[short], credit[short], requested[short]
                )
            if index == indices[-1]:
                break  # no later item is left to take from (single-item requests stop here)
            for i in now.tolist():
                if base.failure[i]:
                    continue  # nothing is debited or held anew: the item keeps its old hold
                hold = 0
                if requested[i] > 0:  # the script grants the ladder's top when it fits, else the exact grant
                    hold = int(top[i]) if top[i] <= credit[i] and ladder.failure[i] == 0 else int(extra_cost[i])
                taken[rows[i].position] += int(base.cost_micros[i]) + hold - rows[i].back
        rated: dict[int, list] = defaultdict(list)
        for i, row in enumerate(rows):
            if base.failure[i]:
                item = {"fail": int(Code.RATING_FAILED), "reason": base.reason(i, batch)}
            else:
                ladder_ok = ladder.failure[i] == 0
                points = {int(u): int(c) for u, c in zip(ladder.units[i], ladder.cost_micros[i], strict=True)
                          if ladder_ok}  # fmt: skip
                if extra[i] > 0:
                    points[int(used[i] + extra[i])] = int(base.cost_micros[i] + extra_cost[i])
                item = {
                    "cost_total": int(base.cost_micros[i]),
                    "bp": sorted(points.items(), reverse=True),
                    "group": base.group_name(i),
                    "ledger": str(int(base.ledger_code[i])),
                    "rate": base.rate_name(i),
                    "extra": int(extra[i]),
                    "extra_cost": int(extra_cost[i]),
                }
            item.update(used_total=int(used[i]), requested=int(requested[i]), tariff=tariff.hash)
            rated[row.position].append(item)
        return list(rated.items())

    def _session_request(self, work: Work, items: list[dict], account: _Account, session, tariff_hash: str):
        keys = self.store.keys(work.subscriber)
        payload: dict[str, Any] = {
            "t": work.kind.value,
            "sid": work.session_id,
            "rn": work.request_number,
            "acct": work.subscriber,
            "now": work.now_ms,
            "validity": self.validity_time_s,
            "plan": account.plan,
            "ver": int(session[1]) if session else 0,
            "items": [  # none for a refusal, which the script answers before looking at items
                {"rg": quota.rating_group, "svc": quota.service.name.lower(), "used": quota.used, **item}
                for quota, item in zip(work.quotas, items, strict=True)
            ]
            if items
            else [],
        }
        if work.kind is Kind.START:
            payload["info"] = {
                "calling": work.calling,
                "called": work.called,
                "dest": work.destination,
                "tariff": tariff_hash,
                "start_s": work.event_time_s,
            }
        return KeyedRequest(keys.shard, keys.session_script(work.session_id), payload)

    def _event_request(self, work: Work, item: dict, account: _Account, tariff_hash: str) -> KeyedRequest:
        keys = self.store.keys(work.subscriber)
        payload = {
            "sid": work.session_id,
            "rn": work.request_number,
            "acct": work.subscriber,
            "now": work.now_ms,
            "action": work.action.value,
            "plan": account.plan,
            "cost": item["cost_total"],
            "units": work.units,
            "rg": work.rating_group,
            "svc": work.service.name.lower(),
            "group": item["group"],
            "ledger": item["ledger"],
            "rate": item["rate"],
            "tariff": tariff_hash,
            "calling": work.calling,
            "called": work.called,
            "start_s": work.event_time_s,
        }
        return KeyedRequest(keys.shard, [keys.account, keys.event_answers(work.session_id), keys.events], payload)


def _one_per_session(works: list[Work], pending: list[int]) -> tuple[list[int], list[int]]:
    """Split ``pending`` into requests to process now (at most one per session: the lowest request number) and
    requests of the same sessions to process after them."""
    first: dict[tuple[str, str], int] = {}
    later = []
    for position in sorted(pending, key=lambda p: works[p].request_number):
        work = works[position]
        if work.kind not in SESSION_KINDS:
            continue
        key = (work.subscriber, work.session_id)
        if key in first:
            later.append(position)
        else:
            first[key] = position
    deferred = set(later)
    return [position for position in pending if position not in deferred], later


def _service_changed(work: Work, rgs: list) -> InvalidRequest | None:
    """A rating group keeps the service it began with: its usage and cost are counted in that service's unit."""
    for index, (quota, stored) in enumerate(zip(work.quotas, rgs, strict=False)):
        if len(stored) > 3 and stored[3] and stored[3] != quota.service.name.lower():
            return InvalidRequest(
                f"quotas[{index}].service",
                f"rating group {quota.rating_group} is {stored[3]} in this session; a rating group keeps its service",
            )
    return None


def _replay(work: Work, answer: list, currency: str) -> Outcome:
    """An outcome from a script's answer (a fresh one, or one stored for a repeated request)."""
    if work.kind is Kind.EVENT:
        return EventOutcome(*answer[:5], currency=currency, reason=_REASONS.get(answer[0], ""))
    code, balance, available, cost, items = answer
    quotas = [QuotaOutcome(*item) for item in items or []]
    reason = next((q.reason for q in quotas if q.reason), "") or _REASONS.get(code, "")
    return SessionOutcome(code, balance, available, cost, quotas, currency, reason)


_REASONS = {
    Code.CREDIT_LIMIT_REACHED: "not enough credit for the smallest grant",
    Code.END_USER_SERVICE_DENIED: "the account is blocked",
    Code.USER_UNKNOWN: "no account with this subscriber id",
}


def _failed(work: Work, code: Code, reason: str, account: _Account | None = None) -> Outcome:
    balance = (account.balance, account.available, account.currency) if account else (0, 0, "")
    if work.kind is Kind.AUTHORIZE:
        return AuthorizeOutcome(
            code, balance_micros=balance[0], available_micros=balance[1], currency=balance[2], reason=reason
        )
    if work.kind is Kind.EVENT:
        return EventOutcome(code, 0, False, *balance, reason=reason)
    if work.kind is Kind.BALANCE:
        return BalanceOutcome(code)
    return SessionOutcome(code, balance[0], balance[1], 0, [], balance[2], reason)


def _authorized(item: dict, account: _Account) -> AuthorizeOutcome:
    if "fail" in item:
        return AuthorizeOutcome(
            Code.RATING_FAILED,
            reason=item["reason"],
            currency=account.currency,
            balance_micros=account.balance,
            available_micros=account.available,
        )
    units = item["extra"]
    return AuthorizeOutcome(
        Code.SUCCESS if units > 0 else Code.CREDIT_LIMIT_REACHED,
        max_units=units,
        cost_micros=item["extra_cost"],
        balance_micros=account.balance,
        available_micros=account.available,
        currency=account.currency,
        destination_group=item["group"],
        reason="" if units > 0 else _REASONS[Code.CREDIT_LIMIT_REACHED],
    )


def _event_without_apply(work: Work, item: dict, account: _Account) -> EventOutcome | None:
    """Events answered from the read alone (rating failures, price enquiries, balance checks), else None."""
    if "fail" in item:
        return EventOutcome(
            Code.RATING_FAILED, 0, False, account.balance, account.available, account.currency, item["reason"]
        )
    cost = item["cost_total"]
    if work.action in (Action.PRICE_ENQUIRY, Action.CHECK_BALANCE):  # both reserve and write nothing
        return EventOutcome(
            Code.SUCCESS, cost, cost <= account.available, account.balance, account.available, account.currency
        )
    return None

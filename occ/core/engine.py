"""The hot path for a batch of validated requests, in named steps:

    classify (read.lua, one round trip: what is known, what is answered at once) → rate (vectorised, per tariff
    version: rating.py, allocation.py) → apply (session.lua, event.lua: one round trip per script) → outcomes

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

from occ.core import outcomes
from occ.core.errors import InvalidRequest, from_store
from occ.core.payloads import SESSION_KINDS, event_request, read_request, session_request
from occ.core.rating import Account, Rated, Row, rate, rows_for
from occ.core.requests import Action, Code, Kind, Outcome, Work
from occ.core.tariffs import TariffHolder
from occ.store.scripts import KeyedRequest, Store
from occ.store.shapes import ReadReply, ScriptReply

MAX_ATTEMPTS = 3
MAX_KNOWN_ACCOUNTS = 100_000
LIVE_STATES = ("OPEN", "ABORTING")  # ABORTING: aborted by an administrator, waiting for the switch's terminate


class Round:
    """What one attempt at some requests of a batch carries from step to step (by request position).

    Attributes:
        results: the batch's outcomes (or exceptions), filled in as requests are decided.
        rows: what to rate, by tariff hash.
        to_apply: session requests for ``session.lua`` that need no rating (refused starts, reports without items).
        accounts: each request's account as read (or assumed, for unread starts).
        sessions: each update's or end's session as read.
        unread: starts sent without a read (``probe``).
    """

    def __init__(self, results: list, unread: set[int]) -> None:
        self.results, self.unread = results, unread
        self.rows: dict[str, list[Row]] = defaultdict(list)
        self.to_apply: list[tuple[int, KeyedRequest]] = []
        self.accounts: dict[int, Account] = {}
        self.sessions: dict[int, list] = {}


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
                reason = "the account changed during the request"
                results[position] = outcomes.failed(works[position], Code.TOO_BUSY, reason)
            pending = later + [position for position in retry if attempts[position] < MAX_ATTEMPTS]
        return [RuntimeError("no outcome for this request") if result is None else result for result in results]

    async def _attempt(self, works: list[Work], pending: list[int], results: list, *, unread_starts: bool) -> list[int]:
        """One round for ``pending``: classify, rate, apply; returns the positions to try again."""
        unread = self._unread_starts(works, pending) if unread_starts else set()
        step = Round(results, unread)
        await self._classify(works, pending, step)
        session_requests, event_requests = await self._rate(works, step)
        return await self._apply(works, step, session_requests, event_requests)

    # -- classify ------------------------------------------------------------------------------------------------

    def _unread_starts(self, works: list[Work], pending: list[int]) -> set[int]:
        """Starts on accounts read before skip the read: they are rated with the plan as last seen, and session.lua
        checks that plan, answers a repeat, and says "short" when the credit may not cover it all."""
        return {p for p in pending if works[p].kind is Kind.START and works[p].subscriber in self._known}

    async def _classify(self, works: list[Work], pending: list[int], step: Round) -> None:
        """Read what rating needs (one round trip) and decide each request: answered now, to rate, or to apply."""
        for position in step.unread:
            work = works[position]
            step.accounts[position] = account = Account.assumed(*self._known[work.subscriber])
            step.rows[self.tariffs.current.hash].extend(rows_for(position, work, account, None, []))
        read = [position for position in pending if position not in step.unread]
        replies = await self.store.run_batch("read", [read_request(self.store, works[i]) for i in read])
        for position, reply in zip(read, replies, strict=True):
            if isinstance(reply, Exception):  # its shard group's script failed: this request fails, not the batch
                step.results[position] = from_store(reply)
            else:
                self._decide(position, works[position], reply, step)

    def _decide(self, position: int, work: Work, reply: ReadReply, step: Round) -> None:
        account = Account(reply.account) if reply.account else None
        session = reply.session or None
        if account is not None:
            self._remember(work.subscriber, account)
        outcome = self._answer_from_read(work, account, session, reply)
        if outcome is not None:
            step.results[position] = outcome
        elif work.kind is Kind.START and (account is None or account.status != "ACTIVE"):
            # Refused (5030, 4010) by session.lua, which stores the refusal so that a repeat gets it again.
            step.accounts[position] = account = account or Account.missing()
            refusal = self._session_request(work, [], account, None, self.tariffs.current.hash)
            step.to_apply.append((position, refusal))
        else:
            assert account is not None  # _answer_from_read answered requests on unknown accounts
            step.accounts[position] = account
            if session:
                step.sessions[position] = session
            tariff_hash = session[5] if session else self.tariffs.current.hash
            if work.quotas or work.kind not in SESSION_KINDS:
                step.rows[tariff_hash].extend(rows_for(position, work, account, session, reply.rgs))
            else:  # an update or end with nothing to report or ask: no rating, just the session step
                step.to_apply.append((position, self._session_request(work, [], account, session, tariff_hash)))

    @staticmethod
    def _answer_from_read(work: Work, account: Account | None, session: list | None,
                          reply: ReadReply) -> Outcome | InvalidRequest | None:  # fmt: skip
        """The answer when the read alone decides it: a repeat, an unknown session or account, a balance query, a
        read-only request on a blocked account, a rating group changing service. None when it must go on."""
        currency = account.currency if account else ""
        if reply.stored:
            return outcomes.replay(work, reply.stored, currency)
        if work.kind in (Kind.UPDATE, Kind.END) and (not session or session[0] not in LIVE_STATES):
            return outcomes.failed(work, Code.UNKNOWN_SESSION_ID, "no open session with this id")
        if work.kind is Kind.START and (account is None or account.status != "ACTIVE"):
            return None  # refused (5030, 4010) by session.lua, which stores the refusal for a repeat
        if account is None:
            return outcomes.failed(work, Code.USER_UNKNOWN, "no account with this subscriber id")
        if work.kind is Kind.BALANCE:
            return outcomes.balance(account)
        read_only = work.kind is Kind.AUTHORIZE or work.action in (Action.CHECK_BALANCE, Action.PRICE_ENQUIRY)
        if account.status != "ACTIVE" and read_only:  # a blocked direct debit goes on to event.lua, which stores it
            return outcomes.failed(work, Code.END_USER_SERVICE_DENIED, "the account is blocked", account)
        return outcomes.service_changed(work, reply.rgs)

    def _remember(self, account_id: str, account: Account) -> None:
        if len(self._known) >= MAX_KNOWN_ACCOUNTS:
            self._known.clear()
        self._known[account_id] = (account.plan, account.currency)

    # -- rate ----------------------------------------------------------------------------------------------------

    async def _rate(self, works: list[Work], step: Round) -> tuple[list, list]:
        """Rate every row, per tariff version; answer what rating alone decides, and turn the rest into requests
        for session.lua and event.lua."""
        session_requests: list[tuple[int, KeyedRequest]] = step.to_apply
        event_requests: list[tuple[int, KeyedRequest]] = []
        for tariff_hash, rows in step.rows.items():
            rated = rate(await self.tariffs.get(tariff_hash), rows)
            for position, items in rated.items():
                work, account = works[position], step.accounts[position]
                if work.kind is Kind.AUTHORIZE:
                    step.results[position] = outcomes.authorized(items[0], account)
                elif work.kind is Kind.EVENT:
                    outcome = outcomes.event_without_apply(work, items[0], account)
                    if outcome is not None:
                        step.results[position] = outcome
                    else:
                        request = event_request(self.store, work, items[0], account=account, tariff_hash=tariff_hash)
                        event_requests.append((position, request))
                else:
                    session = step.sessions.get(position)
                    request = self._session_request(work, items, account, session, tariff_hash,
                                                    probe=position in step.unread)  # fmt: skip
                    session_requests.append((position, request))
        return session_requests, event_requests

    def _session_request(self, work: Work, items: list[Rated], account: Account, session: list | None,
                         tariff_hash: str, *, probe: bool = False) -> KeyedRequest:  # fmt: skip
        return session_request(self.store, work, items, account=account, session=session, tariff_hash=tariff_hash,
                               validity_time_s=self.validity_time_s, probe=probe)  # fmt: skip

    # -- apply ---------------------------------------------------------------------------------------------------

    async def _apply(self, works: list[Work], step: Round, session_requests: list, event_requests: list) -> list[int]:
        """Run session.lua and event.lua (concurrently, one round trip each); returns the positions to retry."""
        session_replies, event_replies = await asyncio.gather(
            self.store.run_batch("session", [request for _, request in session_requests]),
            self.store.run_batch("event", [request for _, request in event_requests]),
        )
        retry = []
        for (position, _), reply in itertools.chain(
            zip(session_requests, session_replies, strict=True), zip(event_requests, event_replies, strict=True)
        ):
            if self._settle_reply(position, works[position], reply, step):
                retry.append(position)
        return retry

    def _settle_reply(self, position: int, work: Work, reply: ScriptReply | Exception, step: Round) -> bool:
        """Record the outcome a script's reply gives; True when the request must go round again."""
        if isinstance(reply, Exception):
            step.results[position] = from_store(reply)
        elif reply.outcome in ("retry", "short"):  # the plan moved, or the credit must be read: read, go round again
            return True
        elif reply.outcome == "gone":
            step.results[position] = outcomes.failed(work, Code.UNKNOWN_SESSION_ID, "no open session with this id")
        elif reply.outcome == "exists":
            step.results[position] = InvalidRequest("session_id", "is already in use by another session")
        else:
            step.results[position] = outcome = outcomes.replay(work, reply.answer, step.accounts[position].currency)
            if outcome.code == Code.USER_UNKNOWN:
                self._known.pop(work.subscriber, None)
        return False


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

"""The payloads the batch scripts take and the replies they give, as typed structures (msgpack on the wire).

Each structure mirrors the header of its script in ``lua/`` (KEYS, ARGV and the return value are documented there,
field by field); a field added to a script is added here too. Payloads are encoded as msgpack maps, so field names
are the script's (``sid``, ``rn`` …). ``k``, the indices of a request's keys in the call's KEYS, is filled in by
``Store.run_batch``. Structures with ``omit_defaults`` leave out a field at its default, exactly as the script
expects an absent one: Lua reads a present ``fail = 0`` as a failure, an absent one as none.

Replies are decoded into array-like structures (the scripts answer with arrays); the parts whose layout is the
script's own business (an account or session read, a stored answer) stay lists, documented per field.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ReadRequest(msgspec.Struct):
    """A request of ``read.lua``: what rating needs to know first.

    Attributes:
        acct: the account id.
        rn: the request number whose stored answer is wanted (-1: none).
        rgs: the rating groups whose usage, committed cost, hold and service are wanted.
        owned: ``k[2]`` is a session (it names its account: another account's session reads as none).
        k: indices of the account key and of the session (or event-answer) key, if any, in the call's KEYS.
    """

    acct: str
    rn: int
    rgs: list[int]
    owned: bool
    k: list[int] = msgspec.field(default_factory=list)


class ReadReply(msgspec.Struct, array_like=True):
    """A reply of ``read.lua``.

    Attributes:
        account: ``[balance, credit_limit, reserved, status, plan, currency]`` (text, or false where unset), or
            false when there is no such account.
        session: ``[state, version, plan, dest, start_s, tariff]``, or false when there is no such session.
        rgs: per rating group asked, ``[used, cost, hold, service]``.
        stored: the answer stored for the request number, or false.
    """

    account: list[Any] | bool
    session: list[Any] | bool
    rgs: list[list[Any]]
    stored: list[Any] | bool


class SessionItem(msgspec.Struct, omit_defaults=True):
    """A quota item of a ``session.lua`` request, rated.

    Attributes:
        rg: the rating group.
        svc: its service, ``voice`` / ``data`` / ``message``.
        used: units used since the previous report.
        used_total: the rating group's cumulative usage including ``used``.
        requested: units asked for next (0 on an end).
        cost_total: the cumulative cost of ``used_total`` (micro-units).
        bp: grant candidates ``(units_total, cost_total)``, largest first.
        group, ledger, rate: destination group, ledger code and rate id of the pricing.
        fail: the result code when rating failed (left out otherwise).
        reason: why rating failed (left out when empty).
    """

    rg: int
    svc: str
    used: int
    used_total: int
    requested: int
    cost_total: int
    bp: list[tuple[int, int]]
    group: str
    ledger: str
    rate: str
    fail: int = 0
    reason: str = ""


class StartInfo(msgspec.Struct):
    """What a start records on its session (``info`` of a ``session.lua`` start)."""

    calling: str
    called: str
    dest: str
    tariff: str
    start_s: int


class SessionRequest(msgspec.Struct, omit_defaults=True):
    """A start, update or end for ``session.lua``.

    Attributes:
        t: ``start``, ``update`` or ``end``.
        sid, rn, acct: session id, request number, account id.
        now: time of the request, Unix ms.
        validity: validity time of a grant, s.
        plan: the plan the request was rated with (a start's must still be the account's).
        ver: the session version rating read (an update's or end's must still be current).
        items: the rated quota items (none for a refused start).
        probe: a start whose account was not read (``short`` when the credit may not cover everything).
        info: a start's session details.
        k: indices of the account, session, open-session set, event stream and deadline zset keys in KEYS.
    """

    t: str
    sid: str
    rn: int
    acct: str
    now: int
    validity: int
    plan: str
    ver: int
    items: list[SessionItem]
    probe: bool = False
    info: StartInfo | None = None
    k: list[int] = msgspec.field(default_factory=list)


class CloseRequest(msgspec.Struct):
    """A close for ``session.lua``: the sweeper's (TIMEOUT) or an administrator's abort (ABORTED).

    Attributes:
        t: always ``close``.
        sid, acct: session and account id.
        now: time of the close, Unix ms.
        cause: ``TIMEOUT`` or ``ABORTED``.
        validity: an abort's validity time, s (the switch's terminate is awaited for twice that).
        reason: an abort's reason, told to the switch.
        k: as for :class:`SessionRequest`.
    """

    t: str
    sid: str
    acct: str
    now: int
    cause: str
    validity: int = 0
    reason: str = ""
    k: list[int] = msgspec.field(default_factory=list)


class EventRequest(msgspec.Struct):
    """A one-shot event for ``event.lua``.

    Attributes:
        sid, rn, acct: event (session) id, request number, account id.
        now: time of the request, Unix ms.
        action: ``DIRECT_DEBIT``, ``REFUND_ACCOUNT`` or ``CHECK_BALANCE``.
        plan: the plan the event was rated with (must still be the account's).
        cost: the rated price, micro-units.
        units, rg, svc: units, rating group and service of the event.
        group, ledger, rate, tariff: its pricing: destination group, ledger code, rate id, tariff hash.
        calling, called: the parties as presented.
        start_s: when the event happened, Unix s.
        k: indices of the account, event-answer and event-stream keys in KEYS.
    """

    sid: str
    rn: int
    acct: str
    now: int
    action: str
    plan: str
    cost: int
    units: int
    rg: int
    svc: str
    group: str
    ledger: str
    rate: str
    tariff: str
    calling: str
    called: str
    start_s: int
    k: list[int] = msgspec.field(default_factory=list)


class ScriptReply(msgspec.Struct, array_like=True):
    """A reply of ``session.lua`` or ``event.lua`` for one request.

    Attributes:
        outcome: ``ok``, ``dup`` (a repeat: the stored answer), ``fail`` (refused, answer stored), ``retry``
            (what rating relied on moved), ``short`` (a probed start the credit may not cover), ``gone`` (no such
            open session), ``exists`` (the session id is another's).
        answer: with ok, dup and fail: ``session.lua``'s ``[code, balance, available, session_cost, items]`` (items
            ``[rg, code, granted, used_total, cost, over, final_unit, reason]``), ``event.lua``'s ``[code, cost,
            enough, balance, available]``.
        cause: with a close's ok: ``ABORTING`` for an abort, else the cause the session closed with.
    """

    outcome: str
    answer: list[Any] = []
    cause: str = ""
